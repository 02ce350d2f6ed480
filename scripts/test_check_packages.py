#!/usr/bin/env python3
"""The package checker must catch what opkg and apk would reject: each test
copies a good build, breaks one thing the way a careless builder would, and
expects scripts/check-packages.py to fail on exactly that.

    python3 scripts/test_check_packages.py DIST     (a build of build-packages.sh)
"""

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DIST = None


def tar_bytes(members, fmt):
    """A tar of (TarInfo, bytes) in format `fmt`, via tarfile's own writer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if ti.isfile() else None)
    return buf.getvalue()


def read_tar(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        return [(ti, t.extractfile(ti).read() if ti.isfile() else b"") for ti in t]


class Broken(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.dist = os.path.join(self.tmp, "dist")
        shutil.copytree(DIST, self.dist, symlinks=True)
        opkg, apk = os.path.join(self.dist, "opkg"), os.path.join(self.dist, "apk")
        self.ipk = os.path.join(opkg, sorted(f for f in os.listdir(opkg) if f.startswith("aliddns_"))[0])
        arch = sorted(d for d in os.listdir(apk) if os.path.isdir(os.path.join(apk, d)))[0]
        self.apk = os.path.join(apk, arch, [f for f in os.listdir(os.path.join(apk, arch)) if f.startswith("aliddns-")][0])

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def checker_fails_with(self, *needles):
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "check-packages.py"), self.dist],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.assertEqual(r.returncode, 1, r.stdout[-2000:])
        bad = [line for line in r.stdout.split("\n") if line.startswith("not ok")]
        for needle in needles:
            self.assertTrue(any(needle in line for line in bad), f"no 'not ok' line with {needle!r} in {bad}")

    def rewrite_ipk(self, change):
        """change(members of the outer tar as {name: bytes}) -> the same, modified."""
        outer = dict((ti.name, data) for ti, data in read_tar(gzip.decompress(open(self.ipk, "rb").read())))
        outer = change(outer)
        members = []
        for name, data in outer.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            members.append((ti, data))
        open(self.ipk, "wb").write(gzip.compress(tar_bytes(members, tarfile.GNU_FORMAT)))

    def test_pax_headers_in_the_opkg_data_tar(self):
        def to_pax(outer):
            data = read_tar(gzip.decompress(outer["./data.tar.gz"]))
            outer["./data.tar.gz"] = gzip.compress(self._with_pax(data))
            return outer

        self.rewrite_ipk(to_pax)
        self.checker_fails_with("data tar has no pax header")

    @staticmethod
    def _with_pax(members):
        for ti, _ in members:
            ti.pax_headers = {"comment": "x"}
        return tar_bytes(members, tarfile.PAX_FORMAT)

    def edit_ipk_member(self, tar_name, member, edit):
        """Rewrites one member of the ipk's control or data tar: edit(TarInfo, bytes) -> bytes."""

        def change(outer):
            entries = read_tar(gzip.decompress(outer[tar_name]))
            for i, (ti, data) in enumerate(entries):
                if ti.name == member:
                    data = edit(ti, data)
                    ti.size = len(data)
                    entries[i] = (ti, data)
            outer[tar_name] = gzip.compress(tar_bytes(entries, tarfile.GNU_FORMAT))
            return outer

        self.rewrite_ipk(change)

    def test_an_empty_control_field(self):
        self.edit_ipk_member(
            "./control.tar.gz", "./control", lambda ti, data: data.replace(b"Depends: ca-bundle\n", b"Depends: \n")
        )
        self.checker_fails_with("control has no empty field")

    @staticmethod
    def _mode_644(ti, data):
        ti.mode = 0o644
        return data

    def test_a_script_not_executable(self):
        self.edit_ipk_member("./control.tar.gz", "./postinst", self._mode_644)
        self.checker_fails_with("postinst is 0755")

    def test_the_config_world_readable(self):
        self.edit_ipk_member("./data.tar.gz", "./etc/config/aliddns", self._mode_644)
        self.checker_fails_with("files and modes")

    def test_an_apk_data_stream_changed_after_signing(self):
        blob = open(self.apk, "rb").read()
        d = zlib.decompressobj(16 + 15)
        d.decompress(blob)
        rest = d.unused_data  # control + data
        d = zlib.decompressobj(16 + 15)
        d.decompress(rest)
        data_gz = d.unused_data
        head = blob[: len(blob) - len(data_gz)]
        files = read_tar(gzip.decompress(data_gz))
        for i, (ti, content) in enumerate(files):
            if ti.name == "etc/init.d/aliddns":
                content = content + b"# tampered\n"
                ti.size = len(content)
                files[i] = (ti, content)
        open(self.apk, "wb").write(head + gzip.compress(tar_bytes(files, tarfile.PAX_FORMAT)))
        self.checker_fails_with("datahash", "APK-TOOLS.checksum.SHA1")

    def test_a_package_missing_from_the_opkg_index(self):
        path = os.path.join(self.dist, "opkg", "Packages")
        text = open(path).read()
        entries = text.strip("\n").split("\n\n")
        open(path, "w").write("\n\n".join(entries[1:]) + "\n\n")
        open(path + ".gz", "wb").write(gzip.compress(open(path, "rb").read()))
        self.checker_fails_with("Packages lists every .ipk")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    DIST = os.path.abspath(sys.argv.pop(1))
    unittest.main()
