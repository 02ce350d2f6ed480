#!/usr/bin/env python3
"""Checks the packages scripts/build-packages.sh wrote, the way opkg and apk
would see them, and runs their maintainer scripts against a temporary root.

    python3 scripts/check-packages.py [DIST] [--luci]

DIST defaults to dist/. For each .ipk: a gzip'd tar of ./debian-binary,
./control.tar.gz and ./data.tar.gz; every tar GNU format (no pax header: opkg
would drop the files); owners 0:0; the control fields (no empty field, LF
only, version = Cargo.toml's, arch = the file name's); conffiles; modes; each
non-binary file equal to the repo's; the binary static for its arch (`file`)
and, when it can be run (natively or qemu-user), `--version` = the package's.
For each .apk: three gzip streams; the signature checked with `openssl`
against DIST/apk/<key>; a control stream without end-of-archive blocks;
.PKGINFO's datahash = sha256 of the data stream; a pax
APK-TOOLS.checksum.SHA1 on every data file, equal to its sha1; directory
entries. The feed indexes (Packages, Packages.gz, APKINDEX.tar.gz) against the
files. Then the scripts: an image build (IPKG_INSTROOT), install, upgrade with
a changed config (opkg and apk), and removal, with /etc/rc.common replaced by
a stub that records what it was asked; the live cases run in a private mount
namespace (unshare) where the temporary root's etc/ is /etc.

--luci requires the LuCI app and translation packages too (read from
LUCI_APP_DIR, default openwrt/luci-app-aliddns; PO2LMO as for the build). Prints one
`ok`/`not ok` line per check; exit status 1 when any failed.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import openwrt_pkg  # noqa: E402  (the Makefile reader: the checker compares against it)

# What issue 12 asks for, independent of the Makefile reader: path -> mode.
EXPECTED_FILES = {
    "usr/bin/aliddns": 0o755,
    "etc/init.d/aliddns": 0o755,
    "etc/config/aliddns": 0o600,
    "etc/hotplug.d/iface/95-aliddns": 0o644,
    "etc/hotplug.d/ntp/95-aliddns": 0o644,
}
REPO_FILES = {
    "etc/init.d/aliddns": "openwrt/files/aliddns.init",
    "etc/config/aliddns": "openwrt/files/aliddns.config",
    "etc/hotplug.d/iface/95-aliddns": "openwrt/files/aliddns.hotplug",
    "etc/hotplug.d/ntp/95-aliddns": "openwrt/files/aliddns.ntp-hotplug",
}
# `file` says this about the static binary for each OpenWrt arch prefix.
FILE_SAYS = {
    "mipsel_": ["ELF 32-bit LSB", "MIPS"],
    "mips_": ["ELF 32-bit MSB", "MIPS"],
    "arm_": ["ELF 32-bit LSB", "ARM, EABI5"],
    "aarch64_": ["ELF 64-bit LSB", "ARM aarch64"],
    "x86_64": ["ELF 64-bit LSB", "x86-64"],
}
RUNNER = {"mipsel_": "qemu-mipsel", "mips_": "qemu-mips", "arm_": "qemu-arm", "aarch64_": "qemu-aarch64", "x86_64": ""}

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))
    return cond


def prefix_of(arch):
    return next((p for p in FILE_SAYS if arch.startswith(p)), None)


# ---------------------------------------------------------------- tar reading


def raw_headers(data):
    """Every header block of an uncompressed tar: (typeflag, magic, name, size),
    read by hand so pax headers and formats are seen as they are."""
    out, pos = [], 0
    while pos + 512 <= len(data):
        block = data[pos : pos + 512]
        if block == b"\0" * 512:
            out.append(("EOF", b"", "", 0))
            pos += 512
            continue
        name = block[0:100].rstrip(b"\0").decode()
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        out.append((chr(block[156]), block[257:265], name, size))
        pos += 512 + (size + 511) // 512 * 512
    return out


def members(data):
    """{name: (TarInfo, bytes)} of an uncompressed tar (end blocks optional)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        for ti in t:
            content = t.extractfile(ti).read() if ti.isfile() else b""
            out[ti.name] = (ti, content)
    return out


def gzip_streams(blob):
    """The concatenated gzip streams of a file, each as (compressed, uncompressed)."""
    out, rest = [], blob
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        plain = d.decompress(rest) + d.flush()
        used = len(rest) - len(d.unused_data)
        out.append((rest[:used], plain))
        rest = d.unused_data
    return out


def openssl_verify(pubkey, signature, data):
    with tempfile.TemporaryDirectory() as tmp:
        sig, dat = os.path.join(tmp, "sig"), os.path.join(tmp, "data")
        open(sig, "wb").write(signature)
        open(dat, "wb").write(data)
        r = subprocess.run(
            ["openssl", "dgst", "-sha1", "-verify", pubkey, "-signature", sig, dat],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return r.returncode == 0 and b"Verified OK" in r.stdout


# ---------------------------------------------------------------- shared checks


def check_binary(tag, arch, content, version):
    prefix = prefix_of(arch)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "aliddns")
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, 0o755)
        desc = subprocess.run(["file", "-b", path], stdout=subprocess.PIPE, text=True).stdout.strip()
        want = FILE_SAYS.get(prefix, ["?"]) + ["statically linked"]
        check(f"{tag}: `file` says static {arch}", all(w in desc for w in want), desc)
        runner = RUNNER.get(prefix)
        if runner is None or (runner and not shutil.which(runner)):
            print(f"# {tag}: --version not run ({runner or 'no runner'} missing)")
            return
        out = subprocess.run(([runner] if runner else []) + [path, "--version"], stdout=subprocess.PIPE, text=True)
        first = out.stdout.split("\n")[0]
        check(f"{tag}: --version is {version}", first.startswith(f"aliddns {version} ("), first)
        check(f"{tag}: no embedded roots (ca-bundle)", "features: tls" in out.stdout.split("\n"), out.stdout)


def check_data_files(tag, files, arch, version, is_aliddns):
    """files: {path without ./: (TarInfo, content)} of regular files."""
    if not is_aliddns:
        return
    got = {p: ti.mode for p, (ti, _) in files.items() if not p.startswith("lib/apk/")}
    check(f"{tag}: files and modes", got == EXPECTED_FILES, f"{got}")
    for path, repo in REPO_FILES.items():
        content = files.get(path, (None, None))[1]
        check(f"{tag}: {path} is {repo}", content == open(os.path.join(ROOT, repo), "rb").read())
    if "usr/bin/aliddns" in files:
        check_binary(tag, arch, files["usr/bin/aliddns"][1], version)


# ---------------------------------------------------------------- ipk


def check_ipk(path, pkg_by_name):
    tag = os.path.basename(path)
    blob = open(path, "rb").read()
    check(f"{tag}: gzip", blob[:2] == b"\x1f\x8b")
    outer = gzip.decompress(blob)
    tars = {"outer": outer}
    m = members(outer)
    check(f"{tag}: outer members", sorted(m) == ["./control.tar.gz", "./data.tar.gz", "./debian-binary"], sorted(m))
    check(f"{tag}: debian-binary", m.get("./debian-binary", (0, b""))[1] == b"2.0\n")
    control_tar = gzip.decompress(m["./control.tar.gz"][1])
    data_tar = gzip.decompress(m["./data.tar.gz"][1])
    tars.update(control=control_tar, data=data_tar)
    for which, data in tars.items():
        heads = [h for h in raw_headers(data) if h[0] != "EOF"]
        pax = [h[2] for h in heads if h[0] in "xg"]
        check(f"{tag}: {which} tar has no pax header", not pax, f"{len(pax)} pax headers")
        check(f"{tag}: {which} tar is GNU format", all(h[1] == b"ustar  \0" for h in heads))
        check(
            f"{tag}: {which} tar owned 0:0",
            all(ti.uid == 0 and ti.gid == 0 for ti, _ in members(data).values()),
        )
    cm = members(control_tar)
    control = cm["./control"][1].decode()
    check(f"{tag}: control has LF line endings only", "\r" not in control)
    fields = dict(line.split(": ", 1) for line in control.strip("\n").split("\n"))
    check(f"{tag}: control has no empty field", all(v.strip() for v in fields.values()), fields)
    name = fields.get("Package")
    pkg = pkg_by_name.get(name)
    check(f"{tag}: package {name} is known", pkg is not None)
    if pkg is None:
        return None
    version = f"{pkg['version']}-{pkg['release']}"
    arch = tag[len(f"{name}_{version}_") : -len(".ipk")]
    if name != "aliddns":
        check(f"{tag}: arch all", arch == "all")
    check(f"{tag}: Version {version}", fields.get("Version") == version, fields.get("Version"))
    check(f"{tag}: Architecture {arch}", fields.get("Architecture") == arch, fields.get("Architecture"))
    if name == "aliddns":
        check(f"{tag}: depends on ca-bundle (no embedded roots)", "ca-bundle" in fields.get("Depends", "").split(", "))
    want_deps = ", ".join(pkg["depends"])
    check(f"{tag}: Depends {want_deps or '(none)'}", fields.get("Depends", "") == want_deps, fields.get("Depends"))
    for f in ("License", "Maintainer", "Description", "Installed-Size"):
        check(f"{tag}: has {f}", f in fields)
    dm = members(data_tar)
    files = {p[2:]: v for p, v in dm.items() if v[0].isfile()}
    dirs = {p[2:].rstrip("/") for p, v in dm.items() if v[0].isdir()}
    check(
        f"{tag}: Installed-Size is the files' size",
        fields.get("Installed-Size") == str(sum(len(c) for _, c in files.values())),
    )
    check(f"{tag}: every parent directory is an entry", all(os.path.dirname(p) in dirs | {""} for p in files))
    for script in ("postinst", "prerm"):
        if f"./{script}" in cm:
            check(f"{tag}: {script} is 0755", cm[f"./{script}"][0].mode == 0o755)
    conffiles = cm.get("./conffiles", (None, b""))[1].decode()
    check(f"{tag}: conffiles", conffiles.split() == pkg["conffiles"], conffiles)
    check_data_files(tag, files, arch, pkg["version"], name == "aliddns")
    if name != "aliddns":
        want = {f["path"].lstrip("/") for f in pkg["files"]}
        check(f"{tag}: files as the app directory maps them", set(files) == want, sorted(set(files) ^ want))
    return fields, data_tar, cm


def check_opkg_index(opkg_dir, ipks):
    text = open(os.path.join(opkg_dir, "Packages")).read()
    check("Packages.gz = Packages", gzip.decompress(open(os.path.join(opkg_dir, "Packages.gz"), "rb").read()).decode() == text)
    entries = [dict(line.split(": ", 1) for line in e.split("\n")) for e in text.strip("\n").split("\n\n")]
    by_file = {e.get("Filename"): e for e in entries}
    check("Packages lists every .ipk", sorted(by_file) == sorted(os.path.basename(p) for p in ipks), sorted(by_file))
    for p in ipks:
        e = by_file.get(os.path.basename(p), {})
        blob = open(p, "rb").read()
        check(
            f"Packages: {os.path.basename(p)} size and sha256",
            e.get("Size") == str(len(blob)) and e.get("SHA256sum") == hashlib.sha256(blob).hexdigest(),
        )
        check(f"Packages: {os.path.basename(p)} has Package, Version, Architecture", all(k in e for k in ("Package", "Version", "Architecture")))


# ---------------------------------------------------------------- apk


def check_signed(tag, streams, pubkeys):
    """The first stream is a signature over the second: verify it with openssl."""
    sig = members(streams[0][1])
    names = list(sig)
    ok = len(names) == 1 and names[0].startswith(".SIGN.RSA.")
    check(f"{tag}: signature stream holds one .SIGN.RSA.<key>", ok, names)
    if not ok:
        return
    key_name = names[0][len(".SIGN.RSA.") :]
    key = pubkeys.get(key_name)
    check(f"{tag}: the key {key_name} is published beside the feed", key is not None)
    if key:
        check(f"{tag}: signature verifies (openssl)", openssl_verify(key, sig[names[0]][1], streams[1][0]))
        flipped = bytearray(streams[1][0])
        flipped[len(flipped) // 2] ^= 1
        check(f"{tag}: a flipped byte fails the signature", not openssl_verify(key, sig[names[0]][1], bytes(flipped)))


def check_apk(path, arch, pkg_by_name, pubkeys):
    tag = "apk/" + arch + "/" + os.path.basename(path)
    try:
        streams = gzip_streams(open(path, "rb").read())
    except (zlib.error, EOFError) as e:
        check(f"{tag}: readable gzip streams", False, str(e))
        return None
    check(f"{tag}: three gzip streams", len(streams) == 3, len(streams))
    if len(streams) != 3:
        return None
    check_signed(tag, streams, pubkeys)
    control_plain = streams[1][1]
    heads = raw_headers(control_plain)
    check(f"{tag}: control stream has no end-of-archive blocks", heads and heads[-1][0] != "EOF")
    cm = members(control_plain)
    info = {}
    for line in cm[".PKGINFO"][1].decode().split("\n"):
        if " = " in line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            info.setdefault(k, []).append(v)
    name = info.get("pkgname", ["?"])[0]
    pkg = pkg_by_name.get(name)
    check(f"{tag}: package {name} is known", pkg is not None)
    if pkg is None:
        return None
    want_arch = "noarch" if name != "aliddns" else arch
    check(f"{tag}: pkgver", info.get("pkgver") == [f"{pkg['version']}-r{pkg['release']}"], info.get("pkgver"))
    check(f"{tag}: arch {want_arch}", info.get("arch") == [want_arch], info.get("arch"))
    check(f"{tag}: file name", os.path.basename(path) == f"{name}-{pkg['version']}-r{pkg['release']}.apk")
    check(f"{tag}: depend", info.get("depend", []) == pkg["depends"], info.get("depend"))
    for k in ("pkgdesc", "size", "origin", "license", "builddate"):
        check(f"{tag}: .PKGINFO has {k}", k in info)
    check(f"{tag}: datahash", info.get("datahash") == [hashlib.sha256(streams[2][0]).hexdigest()])
    for member in (".post-install", ".pre-deinstall", ".post-upgrade"):
        if member in cm:
            check(f"{tag}: {member} is 0755", cm[member][0].mode == 0o755)
    data = streams[2][1]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        infos = [(ti, t.extractfile(ti).read() if ti.isfile() else b"") for ti in t]
    files = {ti.name: (ti, c) for ti, c in infos if ti.isfile()}
    dirs = {ti.name.rstrip("/") for ti, _ in infos if ti.isdir()}
    check(f"{tag}: data owned 0:0", all(ti.uid == 0 and ti.gid == 0 for ti, _ in infos))
    check(
        f"{tag}: every data file has a correct APK-TOOLS.checksum.SHA1",
        all(ti.pax_headers.get("APK-TOOLS.checksum.SHA1") == hashlib.sha1(c).hexdigest() for ti, c in files.values()),
    )
    check(f"{tag}: every parent directory is an entry", all(os.path.dirname(p) in dirs | {""} for p in files))
    check(f"{tag}: size = the files' size", info.get("size") == [str(sum(len(c) for _, c in files.values()))])
    listed = files.get(f"lib/apk/packages/{name}.list", (None, b""))[1].decode().split()
    check(f"{tag}: /lib/apk/packages/{name}.list", sorted(listed) == sorted("/" + p for p in files if not p.startswith("lib/apk/")))
    if pkg["conffiles"]:
        conf = files.get(f"lib/apk/packages/{name}.conffiles", (None, b""))[1].decode().split()
        check(f"{tag}: /lib/apk/packages/{name}.conffiles", conf == pkg["conffiles"], conf)
    check_data_files(tag, files, arch, pkg["version"], name == "aliddns")
    return name, info, streams


def check_apkindex(arch_dir, arch, apks, pubkeys):
    tag = f"apk/{arch}/APKINDEX.tar.gz"
    try:
        streams = gzip_streams(open(os.path.join(arch_dir, "APKINDEX.tar.gz"), "rb").read())
    except (zlib.error, EOFError) as e:
        check(f"{tag}: readable gzip streams", False, str(e))
        return
    check(f"{tag}: two gzip streams (signature, index)", len(streams) == 2)
    if len(streams) != 2:
        return
    check_signed(tag, streams, pubkeys)
    text = members(streams[1][1])["APKINDEX"][1].decode()
    entries = [dict((line[0], line[2:]) for line in e.split("\n")) for e in text.strip("\n").split("\n\n")]
    by_name = {e["P"]: e for e in entries}
    check(f"{tag}: lists every package", sorted(by_name) == sorted(a[1][0] for a in apks), sorted(by_name))
    for path, (name, info, streams_of) in apks:
        e = by_name.get(name, {})
        identity = "Q1" + base64.b64encode(hashlib.sha1(streams_of[1][0]).digest()).decode()
        check(f"{tag}: {name} C: is the control stream's sha1", e.get("C") == identity)
        check(f"{tag}: {name} S: is the file size", e.get("S") == str(os.path.getsize(path)))
        check(f"{tag}: {name} V: A: I:", (e.get("V"), e.get("A"), e.get("I")) == (info["pkgver"][0], info["arch"][0], info["size"][0]))


# ---------------------------------------------------------------- maintainer scripts

RC_COMMON_STUB = r"""#!/bin/sh
# Test stub of OpenWrt's /etc/rc.common: records each action in etc/rc.log and
# keeps the /etc/rc.d links as the real enable/disable/enabled do.
initscript="$1"
action="$2"
name=$(basename "$initscript")
start=$(sed -n 's/^START=//p' "$initscript")
stop=$(sed -n 's/^STOP=//p' "$initscript")
rcd="${IPKG_INSTROOT-}/etc/rc.d"
echo "$action${IPKG_INSTROOT:+ root}" >>"${IPKG_INSTROOT-}/etc/rc.log"
case "$action" in
enable)
	mkdir -p "$rcd"
	ln -sf "../init.d/$name" "$rcd/S$start$name"
	ln -sf "../init.d/$name" "$rcd/K$stop$name"
	;;
disable) rm -f "$rcd/S$start$name" "$rcd/K$stop$name" ;;
enabled) [ -e "$rcd/S$start$name" ] ;;
esac
"""


def can_unshare():
    cmd = ["unshare", "-m", "true"] if os.geteuid() == 0 else ["unshare", "-rm", "true"]
    try:
        return subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0
    except FileNotFoundError:
        return False


def run_script(root, script, env=None, live=True):
    """Runs a maintainer script. live: in a mount namespace where root/etc is /etc;
    else as an image build (IPKG_INSTROOT=root)."""
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    e.update(env or {})
    if not live:
        e["IPKG_INSTROOT"] = root
        return subprocess.run(["sh", script], env=e).returncode
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    inner = 'mount --bind "$1/etc" /etc && exec sh "$2"'
    return subprocess.run(unshare + ["sh", "-c", inner, "sh", root, script], env=e).returncode


def rc_log(root):
    path = os.path.join(root, "etc", "rc.log")
    if not os.path.exists(path):
        return []
    lines = open(path).read().split()
    os.remove(path)
    return lines


def new_root(tmp, data_tar):
    root = os.path.join(tmp, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    with tarfile.open(fileobj=io.BytesIO(data_tar), mode="r:") as t:
        t.extractall(root, filter="tar") if hasattr(tarfile, "data_filter") else t.extractall(root)
    with open(os.path.join(root, "etc", "rc.common"), "w") as f:
        f.write(RC_COMMON_STUB)
    os.chmod(os.path.join(root, "etc", "rc.common"), 0o755)
    return root


def install_data(root, data_tar, keep_changed_conffiles):
    """What the package manager does on upgrade: new files, a changed conffile kept."""
    conf = os.path.join(root, "etc", "config", "aliddns")
    saved = open(conf, "rb").read() if keep_changed_conffiles else None
    with tarfile.open(fileobj=io.BytesIO(data_tar), mode="r:") as t:
        t.extractall(root, filter="tar") if hasattr(tarfile, "data_filter") else t.extractall(root)
    if saved is not None:
        open(conf, "wb").write(saved)


def check_scripts(ipk_result, apk_control):
    _, data_tar, cm = ipk_result
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {}
        for name, (_, content) in list(cm.items()) + [(k, v) for k, v in apk_control.items()]:
            base = name[2:] if name.startswith("./") else name
            if base in ("postinst", "prerm", ".post-install", ".pre-deinstall", ".post-upgrade"):
                p = os.path.join(tmp, "script" + base)
                open(p, "wb").write(content)
                scripts[base] = p
        check("scripts: apk .post-install = ipk postinst", open(scripts[".post-install"], "rb").read() == open(scripts["postinst"], "rb").read())
        check("scripts: apk .pre-deinstall = ipk prerm", open(scripts[".pre-deinstall"], "rb").read() == open(scripts["prerm"], "rb").read())

        # Image build: links inside the image, nothing started.
        root = new_root(tmp, data_tar)
        rc = run_script(root, scripts["postinst"], live=False)
        check("image build: postinst exits 0", rc == 0)
        check("image build: only enable, inside the root", rc_log(root) == ["enable", "root"])
        check(
            "image build: /etc/rc.d/S95aliddns -> ../init.d/aliddns",
            os.readlink(os.path.join(root, "etc", "rc.d", "S95aliddns")) == "../init.d/aliddns",
        )

        if not can_unshare():
            print("# SKIPPED: live install/upgrade/remove (no mount namespace: run as root or allow user namespaces)")
            return
        root = new_root(tmp, data_tar)
        conf = os.path.join(root, "etc", "config", "aliddns")
        rc = run_script(root, scripts["postinst"])
        check("install: postinst exits 0", rc == 0)
        check("install: enable, then start (idle while enabled=0)", rc_log(root) == ["enable", "enabled", "start"])
        check("install: S95 link", os.path.islink(os.path.join(root, "etc", "rc.d", "S95aliddns")))

        # opkg upgrade with a changed config: old prerm, new files, new postinst.
        open(conf, "a").write("\n# changed by the user\n")
        changed = open(conf, "rb").read()
        rc = run_script(root, scripts["prerm"], {"PKG_UPGRADE": "1"})
        check("opkg upgrade: prerm stops, does not disable", rc == 0 and rc_log(root) == ["stop"])
        install_data(root, data_tar, keep_changed_conffiles=True)
        rc = run_script(root, scripts["postinst"], {"PKG_UPGRADE": "1"})
        check("opkg upgrade: postinst starts again, does not re-enable", rc == 0 and rc_log(root) == ["enabled", "start"])
        check("opkg upgrade: the user's config is untouched", open(conf, "rb").read() == changed)

        # apk upgrade: only .post-upgrade runs.
        install_data(root, data_tar, keep_changed_conffiles=True)
        rc = run_script(root, scripts[".post-upgrade"])
        check("apk upgrade: post-upgrade restarts", rc == 0 and rc_log(root) == ["enabled", "restart"])
        check("apk upgrade: the user's config is untouched", open(conf, "rb").read() == changed)

        # A service the user disabled stays stopped across an upgrade.
        os.remove(os.path.join(root, "etc", "rc.d", "S95aliddns"))
        run_script(root, scripts["postinst"], {"PKG_UPGRADE": "1"})
        check("upgrade of a disabled service: not started", rc_log(root) == ["enabled"])
        run_script(root, scripts[".post-upgrade"])
        check("apk upgrade of a disabled service: not restarted", rc_log(root) == ["enabled"])
        run_script(root, scripts["postinst"])  # enable again for the removal

        rc_log(root)
        rc = run_script(root, scripts["prerm"])
        check("remove: prerm stops and disables", rc == 0 and rc_log(root) == ["stop", "disable"])
        check("remove: no /etc/rc.d links left", not any("aliddns" in n for n in os.listdir(os.path.join(root, "etc", "rc.d"))))
        check("remove: the config is left for the package manager", open(conf, "rb").read() == changed)


# ---------------------------------------------------------------- main


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    want_luci = "--luci" in sys.argv
    dist = os.path.abspath(args[0] if args else os.path.join(ROOT, "dist"))
    opkg_dir, apk_root = os.path.join(dist, "opkg"), os.path.join(dist, "apk")
    base = openwrt_pkg.aliddns_package()
    pkg_by_name = {"aliddns": base}
    luci_dir = os.environ.get("LUCI_APP_DIR", os.path.join(ROOT, "openwrt", "luci-app-aliddns"))
    if want_luci or os.path.isdir(luci_dir):
        with tempfile.TemporaryDirectory() as work:
            po2lmo = os.environ.get("PO2LMO", "python3 " + os.path.join(ROOT, "scripts", "po2lmo.py")).split()
            for p in openwrt_pkg.luci_packages(luci_dir, base, po2lmo, work):
                pkg_by_name[p["name"]] = p

    ipks = sorted(os.path.join(opkg_dir, f) for f in os.listdir(opkg_dir) if f.endswith(".ipk"))
    check("some .ipk were built", ipks)
    results = {}
    for p in ipks:
        results[os.path.basename(p)] = check_ipk(p, pkg_by_name)
    check_opkg_index(opkg_dir, ipks)
    names = {r[0]["Package"] for r in results.values() if r}
    if want_luci:
        check("opkg: the LuCI app and its translation", {"luci-app-aliddns", "luci-i18n-aliddns-zh-cn"} <= names, names)

    pubkeys = {f: os.path.join(apk_root, f) for f in os.listdir(apk_root) if f.endswith(".pub")}
    arches = sorted(d for d in os.listdir(apk_root) if os.path.isdir(os.path.join(apk_root, d)))
    check("apk: one feed directory per arch of the .ipk", sorted(arches) == sorted(
        r[0]["Architecture"] for r in results.values() if r and r[0]["Architecture"] != "all"))
    apk_control = None
    for arch in arches:
        arch_dir = os.path.join(apk_root, arch)
        apks = []
        for f in sorted(os.listdir(arch_dir)):
            if f.endswith(".apk"):
                r = check_apk(os.path.join(arch_dir, f), arch, pkg_by_name, pubkeys)
                if r:
                    apks.append((os.path.join(arch_dir, f), r))
                    if r[0] == "aliddns" and apk_control is None:
                        apk_control = members(r[2][1][1])
        if want_luci:
            check(f"apk/{arch}: the LuCI app and its translation", {"luci-app-aliddns", "luci-i18n-aliddns-zh-cn"} <= {a[1][0] for a in apks})
        check_apkindex(arch_dir, arch, apks, pubkeys)

    first = next((r for n, r in sorted(results.items()) if r and r[0]["Package"] == "aliddns"), None)
    if first and apk_control:
        check_scripts(first, apk_control)

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
