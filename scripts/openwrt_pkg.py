#!/usr/bin/env python3
"""Builds OpenWrt packages of aliddns without the OpenWrt SDK.

    python3 scripts/openwrt_pkg.py --out DIST --bin ARCH=FILE [--bin ARCH=FILE...]
                                   [--luci DIR] [--key PEM --key-name NAME]

Writes, from the static binaries and openwrt/Makefile:
  DIST/opkg/<name>_<version>-<release>_<arch>.ipk   opkg (OpenWrt <= 24.10)
  DIST/opkg/Packages, Packages.gz                   an opkg feed of every arch
  DIST/apk/<arch>/<name>-<version>-r<release>.apk   apk v2 (OpenWrt >= 25), the
                                                    file name apk fetches from a feed
  DIST/apk/<arch>/APKINDEX.tar.gz                   a signed apk feed per arch
  DIST/apk/<key-name>                               the public key to trust

openwrt/Makefile is the one description of the package: name, version,
release, license, title, description, dependencies, conffiles and the install
recipe (source file, destination and mode of every file) are read from it, so
the feed build and these packages cannot drift. The version must equal
Cargo.toml's. The LuCI app (luci-app-aliddns, luci-i18n-aliddns-zh-cn) is read
from its luci.mk Makefile and its htdocs/, root/ and po/ directories.

The two formats want opposite tars (measured, see docs): opkg silently drops
a tar with pax headers, so every opkg tar is GNU format; apk v2 wants a pax
`APK-TOOLS.checksum.SHA1` on every data file and a control stream without the
end-of-archive blocks. Tars are written member by member (TarInfo.tobuf) for
byte-exact control. mtimes are SOURCE_DATE_EPOCH, owners 0:0, gzip without
name or time: the same inputs give the same bytes.
"""

import argparse
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKEFILE = os.path.join(ROOT, "openwrt", "Makefile")
PKG_SCRIPTS = os.path.join(ROOT, "openwrt", "pkg")

# OpenWrt's rules.mk: the modes its INSTALL_* macros give.
INSTALL_MODES = {"INSTALL_BIN": 0o755, "INSTALL_CONF": 0o600, "INSTALL_DATA": 0o644}

# Which OpenWrt package architectures each static binary runs on.
ARCHES = {
    "mipsel-unknown-linux-musl": ["mipsel_24kc"],
    "mips-unknown-linux-musl": ["mips_24kc"],
    "armv7-unknown-linux-musleabihf": [
        "arm_cortex-a7_neon-vfpv4",
        "arm_cortex-a9_vfpv3-d16",
        "arm_cortex-a15_neon-vfpv4",
    ],
    "aarch64-unknown-linux-musl": ["aarch64_cortex-a53", "aarch64_generic", "aarch64_cortex-a72"],
    "x86_64-unknown-linux-musl": ["x86_64"],
}


def die(msg):
    sys.exit("openwrt_pkg: ERROR: " + msg)


# ---------------------------------------------------------------- package description


def make_vars(text):
    """`NAME:=value` assignments and `define NAME ... endef` blocks of a Makefile."""
    text = text.replace("\\\n", " ")
    out, defines = {}, {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^define\s+(\S+)\s*$", line)
        if m:
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "endef":
                body.append(lines[i])
                i += 1
            defines[m.group(1)] = body
        else:
            m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*(.*)$", line)
            if m:
                out[m.group(1)] = m.group(2).strip()
        i += 1
    return out, defines


def expand(value, variables):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: variables.get(m.group(1), m.group(0)), value)


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        for line in f:
            m = re.match(r'^version\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    die("no version in Cargo.toml")


def depends_of(value):
    """`+ca-bundle $(RUST_ARCH_DEPENDS)` -> ["ca-bundle"]: the runtime dependencies.
    The static binary needs no libc, and @-conditions are build-time only."""
    deps = []
    for word in value.split():
        if word.startswith("+") and "$(" not in word:
            deps.append(word[1:])
    return deps


def aliddns_package():
    """The aliddns package as openwrt/Makefile describes it."""
    with open(MAKEFILE) as f:
        v, defines = make_vars(f.read())
    name = v["PKG_NAME"]
    if v["PKG_VERSION"] != cargo_version():
        die(f"openwrt/Makefile PKG_VERSION {v['PKG_VERSION']} != Cargo.toml version {cargo_version()}")
    pkg = {k: expand(val, v) for k, val in make_vars("\n".join(defines[f"Package/{name}"]))[0].items()}
    files = []
    for line in defines[f"Package/{name}/install"]:
        words = line.split()
        if not words:
            continue
        macro = words[0][2:-1] if words[0].startswith("$(") else None
        if macro == "INSTALL_DIR":
            continue  # directories come from the files' paths
        if macro not in INSTALL_MODES or len(words) != 3:
            die(f"openwrt/Makefile: cannot read install line {line.strip()!r}")
        src, dest = words[1], words[2].replace("$(1)", "")
        if dest.endswith("/"):
            dest += os.path.basename(src)
        if src.startswith("./"):
            src = os.path.join(ROOT, "openwrt", src[2:])
        elif src.endswith("/bin/" + name):
            src = None  # the binary, given per target
        else:
            die(f"openwrt/Makefile: unknown source {src}")
        files.append({"path": dest, "src": src, "mode": INSTALL_MODES[macro]})
    description = " ".join(line.strip() for line in defines[f"Package/{name}/description"] if line.strip())
    conffiles = [c.strip() for c in defines.get(f"Package/{name}/conffiles", []) if c.strip()]
    return {
        "name": name,
        "version": v["PKG_VERSION"],
        "release": v["PKG_RELEASE"],
        "license": v.get("PKG_LICENSE", ""),
        "license_files": v.get("PKG_LICENSE_FILES", ""),
        "maintainer": v.get("PKG_MAINTAINER", ""),
        "section": pkg.get("SECTION", ""),
        "title": pkg.get("TITLE", ""),
        "url": pkg.get("URL", ""),
        "depends": depends_of(pkg.get("DEPENDS", "")),
        "description": description,
        "conffiles": conffiles,
        "files": files,
        "scripts": {
            "postinst": os.path.join(PKG_SCRIPTS, "postinst"),
            "prerm": os.path.join(PKG_SCRIPTS, "prerm"),
            "post-upgrade": os.path.join(PKG_SCRIPTS, "post-upgrade"),
        },
    }


def tree_files(top, prefix):
    """Every regular file under `top`, installed under `prefix`, executable bits kept."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for fn in sorted(filenames):
            src = os.path.join(dirpath, fn)
            rel = os.path.relpath(src, top)
            mode = 0o755 if os.stat(src).st_mode & 0o111 else 0o644
            out.append({"path": prefix.rstrip("/") + "/" + rel, "src": src, "mode": mode})
    return out


def luci_packages(app_dir, base, po2lmo, work):
    """luci-app-aliddns and its zh-cn translation, as LuCI's luci.mk packages them."""
    with open(os.path.join(app_dir, "Makefile")) as f:
        v, _ = make_vars(f.read())
    app = os.path.basename(os.path.normpath(app_dir))
    short = app.replace("luci-app-", "", 1)
    version = v.get("PKG_VERSION", base["version"])
    release = v.get("PKG_RELEASE", base["release"])
    files = []
    if os.path.isdir(os.path.join(app_dir, "htdocs")):
        files += tree_files(os.path.join(app_dir, "htdocs"), "/www")
    if os.path.isdir(os.path.join(app_dir, "root")):
        files += tree_files(os.path.join(app_dir, "root"), "")
    common = {
        "version": version,
        "release": release,
        "license": v.get("PKG_LICENSE", base["license"]),
        "license_files": "",
        "maintainer": v.get("PKG_MAINTAINER", base["maintainer"]),
        "section": "luci",
        "url": "",
        "conffiles": [],
        "arch": "all",
    }
    title = v.get("LUCI_TITLE", f"LuCI support for {short}")
    out = [
        dict(
            common,
            name=app,
            title=title,
            description=v.get("LUCI_DESCRIPTION", title),
            # Every LuCI app needs LuCI itself; on a router with LuCI this is a no-op.
            depends=["luci-base"] + [d for d in depends_of(v.get("LUCI_DEPENDS", "")) if d != "luci-base"],
            files=files,
            scripts={"postinst": os.path.join(PKG_SCRIPTS, "luci-postinst")},
        )
    ]
    po = os.path.join(app_dir, "po", "zh_Hans", f"{short}.po")
    if os.path.exists(po):
        lmo = os.path.join(work, f"{short}.zh-cn.lmo")
        subprocess.run(po2lmo + [po, lmo], check=True)
        out.append(
            dict(
                common,
                name=f"luci-i18n-{short}-zh-cn",
                title=f"{app} - 简体中文 (Chinese Simplified)",
                description=f"Translation for {app} - 简体中文 (Chinese Simplified)",
                depends=[app],
                files=[{"path": f"/usr/lib/lua/luci/i18n/{short}.zh-cn.lmo", "src": lmo, "mode": 0o644}],
                scripts={"postinst": os.path.join(PKG_SCRIPTS, "luci-postinst")},
            )
        )
    else:
        print(f"openwrt_pkg: note: no {po}; no translation package", file=sys.stderr)
    return out


# ---------------------------------------------------------------- tar and gzip


def read(path):
    with open(path, "rb") as f:
        return f.read()


def tar_member(name, data, mode, mtime, fmt, is_dir=False, pax=None):
    """One tar member (header, data, padding) in format `fmt`, owned by 0:0."""
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    ti.mode = mode
    ti.size = 0 if is_dir else len(data)
    ti.mtime = int(mtime)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    if pax:
        ti.pax_headers = dict(pax)
    buf = ti.tobuf(fmt, "utf-8", "strict")
    if not is_dir and data:
        buf += data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    return buf


def tar_end():
    return b"\0" * (2 * tarfile.BLOCKSIZE)


def gz(data):
    """gzip without file name or time (reproducible)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=out, mtime=0) as g:
        g.write(data)
    return out.getvalue()


def tree(files):
    """Files sorted by path, with every parent directory, as (path, file|None)."""
    dirs = set()
    for f in files:
        parts = f["path"].strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [(d, None) for d in dirs] + [(f["path"].strip("/"), f) for f in files]
    return sorted(entries, key=lambda e: e[0])


def file_data(f, binary):
    return read(f["src"] if f["src"] else binary)


def installed_size(pkg, binary):
    return sum(len(file_data(f, binary)) for f in pkg["files"])


# ---------------------------------------------------------------- ipk


def ipk_control(pkg, arch, size, epoch):
    fields = [
        ("Package", pkg["name"]),
        ("Version", f"{pkg['version']}-{pkg['release']}"),
        ("Depends", ", ".join(pkg["depends"])),
        ("License", pkg["license"]),
        ("LicenseFiles", pkg["license_files"]),
        ("Section", pkg["section"]),
        ("SourceDateEpoch", str(epoch)),
        ("Maintainer", pkg["maintainer"]),
        ("Architecture", arch),
        ("Installed-Size", str(size)),
        ("Description", pkg["title"] if not pkg["description"] else pkg["description"]),
    ]
    # An empty field (`Depends: `) crashes opkg: leave it out.
    return "".join(f"{k}: {v}\n" for k, v in fields if v)


def build_ipk(pkg, arch, binary, epoch):
    gnu = tarfile.GNU_FORMAT
    data = tar_member("./", b"", 0o755, epoch, gnu, is_dir=True)
    for path, f in tree(pkg["files"]):
        if f is None:
            data += tar_member(f"./{path}/", b"", 0o755, epoch, gnu, is_dir=True)
        else:
            data += tar_member(f"./{path}", file_data(f, binary), f["mode"], epoch, gnu)
    data = gz(data + tar_end())
    control_text = ipk_control(pkg, arch, installed_size(pkg, binary), epoch)
    control = tar_member("./", b"", 0o755, epoch, gnu, is_dir=True)
    control += tar_member("./control", control_text.encode(), 0o644, epoch, gnu)
    if pkg["conffiles"]:
        control += tar_member("./conffiles", ("\n".join(pkg["conffiles"]) + "\n").encode(), 0o644, epoch, gnu)
    for script in ("postinst", "prerm"):
        if script in pkg["scripts"]:
            control += tar_member(f"./{script}", read(pkg["scripts"][script]), 0o755, epoch, gnu)
    control = gz(control + tar_end())
    outer = tar_member("./debian-binary", b"2.0\n", 0o644, epoch, gnu)
    outer += tar_member("./data.tar.gz", data, 0o644, epoch, gnu)
    outer += tar_member("./control.tar.gz", control, 0o644, epoch, gnu)
    return gz(outer + tar_end()), control_text


def ipk_name(pkg, arch):
    return f"{pkg['name']}_{pkg['version']}-{pkg['release']}_{arch}.ipk"


def write_opkg_index(outdir, entries):
    text = ""
    for fname, control_text in entries:
        blob = read(os.path.join(outdir, fname))
        text += control_text
        text += f"Filename: {fname}\nSize: {len(blob)}\nSHA256sum: {hashlib.sha256(blob).hexdigest()}\n\n"
    with open(os.path.join(outdir, "Packages"), "w", newline="\n") as f:
        f.write(text)
    with open(os.path.join(outdir, "Packages.gz"), "wb") as f:
        f.write(gz(text.encode()))


# ---------------------------------------------------------------- apk


def sign(data, key, key_name, epoch):
    """The signature stream: a tar (no end blocks) of `.SIGN.RSA.<key_name>` holding
    the RSA/SHA-1 signature of `data`, made by openssl."""
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(data)
        tmp.flush()
        sig = subprocess.run(
            ["openssl", "dgst", "-sha1", "-sign", key, tmp.name], check=True, stdout=subprocess.PIPE
        ).stdout
    return gz(tar_member(f".SIGN.RSA.{key_name}", sig, 0o644, epoch, tarfile.GNU_FORMAT))


def apk_data_files(pkg):
    """The package's files plus OpenWrt's /lib/apk/packages/<name>.list and .conffiles
    (what OpenWrt's own apk packages ship, for sysupgrade and default_postinst)."""
    files = list(pkg["files"])
    meta = []
    listing = "".join(f["path"] + "\n" for f in files)
    meta.append((f"/lib/apk/packages/{pkg['name']}.list", listing))
    if pkg["conffiles"]:
        meta.append((f"/lib/apk/packages/{pkg['name']}.conffiles", "".join(c + "\n" for c in pkg["conffiles"])))
    return files, meta


def build_apk(pkg, arch, binary, epoch, key, key_name):
    pax = tarfile.PAX_FORMAT
    files, meta = apk_data_files(pkg)
    blobs = {f["path"].strip("/"): (file_data(f, binary), f["mode"]) for f in files}
    for path, text in meta:
        blobs[path.strip("/")] = (text.encode(), 0o644)
    entries = tree([{"path": p} for p in blobs])
    data = b""
    for path, f in entries:
        if f is None:
            data += tar_member(path + "/", b"", 0o755, epoch, pax, is_dir=True)
        else:
            content, mode = blobs[path]
            checksum = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(content).hexdigest()}
            data += tar_member(path, content, mode, epoch, pax, pax=checksum)
    data = gz(data + tar_end())
    size = sum(len(c) for c, _ in blobs.values())
    info = [
        "# Generated by aliddns scripts/openwrt_pkg.py",
        f"pkgname = {pkg['name']}",
        f"pkgver = {apk_version(pkg)}",
        f"pkgdesc = {pkg['title']}",
        f"url = {pkg['url']}" if pkg["url"] else None,
        f"builddate = {epoch}",
        f"packager = {pkg['maintainer']}" if pkg["maintainer"] else None,
        f"size = {size}",
        f"arch = {arch}",
        f"origin = {pkg['name']}",
        f"license = {pkg['license']}" if pkg["license"] else None,
    ]
    info += [f"depend = {d}" for d in pkg["depends"]]
    info.append(f"datahash = {hashlib.sha256(data).hexdigest()}")
    pkginfo = "".join(line + "\n" for line in info if line is not None)
    gnu = tarfile.GNU_FORMAT
    control = tar_member(".PKGINFO", pkginfo.encode(), 0o644, epoch, gnu)
    for script, member in (("postinst", ".post-install"), ("prerm", ".pre-deinstall"), ("post-upgrade", ".post-upgrade")):
        if script in pkg["scripts"]:
            control += tar_member(member, read(pkg["scripts"][script]), 0o755, epoch, gnu)
    control = gz(control)  # no end-of-archive blocks: the data stream follows
    signature = sign(control, key, key_name, epoch)
    return signature + control + data, control, size


def apk_version(pkg):
    return f"{pkg['version']}-r{pkg['release']}"


def apk_name(pkg):
    return f"{pkg['name']}-{apk_version(pkg)}.apk"


def write_apkindex(outdir, entries, arch, key, key_name, epoch):
    text = ""
    for pkg, blob, control, size in entries:
        identity = "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
        lines = [
            f"C:{identity}",
            f"P:{pkg['name']}",
            f"V:{apk_version(pkg)}",
            f"A:{pkg['apk_arch']}",
            f"S:{len(blob)}",
            f"I:{size}",
            f"T:{pkg['title']}",
            f"U:{pkg['url']}" if pkg["url"] else None,
            f"L:{pkg['license']}" if pkg["license"] else None,
            f"o:{pkg['name']}",
            f"m:{pkg['maintainer']}" if pkg["maintainer"] else None,
            f"t:{epoch}",
            f"D:{' '.join(pkg['depends'])}" if pkg["depends"] else None,
        ]
        text += "".join(line + "\n" for line in lines if line is not None) + "\n"
    gnu = tarfile.GNU_FORMAT
    index = tar_member("DESCRIPTION", f"aliddns {arch}".encode(), 0o644, epoch, gnu)
    index += tar_member("APKINDEX", text.encode(), 0o644, epoch, gnu)
    index = gz(index + tar_end())
    with open(os.path.join(outdir, "APKINDEX.tar.gz"), "wb") as f:
        f.write(sign(index, key, key_name, epoch) + index)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", action="append", default=[], metavar="TARGET=FILE")
    ap.add_argument("--luci", help="the luci-app-aliddns directory (skipped when absent)")
    ap.add_argument("--po2lmo", default="python3 " + os.path.join(ROOT, "scripts", "po2lmo.py"))
    ap.add_argument("--key", required=True, help="RSA private key (PEM) that signs the apk packages")
    ap.add_argument("--key-name", required=True, help="its public key's file name in /etc/apk/keys/")
    ap.add_argument("--pubkey", required=True, help="the public key (PEM), copied to OUT/apk/KEY-NAME")
    args = ap.parse_args()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    base = aliddns_package()

    binaries = {}
    for item in args.bin:
        target, _, path = item.partition("=")
        if target not in ARCHES:
            die(f"no OpenWrt arch names known for {target}")
        binaries[target] = path

    opkg_dir = os.path.join(args.out, "opkg")
    apk_root = os.path.join(args.out, "apk")
    for d in (opkg_dir, apk_root):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    shutil.copyfile(args.pubkey, os.path.join(apk_root, args.key_name))

    with tempfile.TemporaryDirectory() as work:
        luci = []
        if args.luci and os.path.isdir(args.luci):
            luci = luci_packages(args.luci, base, args.po2lmo.split(), work)
        elif args.luci:
            print(f"openwrt_pkg: note: {args.luci} does not exist; no LuCI packages", file=sys.stderr)

        opkg_entries = []
        # Architecture-independent packages: one .ipk (all), one .apk (noarch) per feed.
        luci_apk = []
        for pkg in luci:
            blob, control_text = build_ipk(pkg, "all", None, epoch)
            fname = ipk_name(pkg, "all")
            with open(os.path.join(opkg_dir, fname), "wb") as f:
                f.write(blob)
            opkg_entries.append((fname, control_text))
            pkg = dict(pkg, apk_arch="noarch")
            luci_apk.append((pkg,) + build_apk(pkg, "noarch", None, epoch, args.key, args.key_name))

        for target, binary in sorted(binaries.items()):
            for arch in ARCHES[target]:
                blob, control_text = build_ipk(base, arch, binary, epoch)
                fname = ipk_name(base, arch)
                with open(os.path.join(opkg_dir, fname), "wb") as f:
                    f.write(blob)
                opkg_entries.append((fname, control_text))

                arch_dir = os.path.join(apk_root, arch)
                os.makedirs(arch_dir)
                pkg = dict(base, apk_arch=arch)
                entries = [(pkg,) + build_apk(pkg, arch, binary, epoch, args.key, args.key_name)]
                entries += luci_apk
                for p, b, _, _ in entries:
                    with open(os.path.join(arch_dir, apk_name(p)), "wb") as f:
                        f.write(b)
                write_apkindex(arch_dir, entries, arch, args.key, args.key_name, epoch)
        write_opkg_index(opkg_dir, opkg_entries)
    for dirpath, _, filenames in sorted(os.walk(args.out)):
        if dirpath.startswith(opkg_dir) or dirpath.startswith(apk_root):
            for fn in sorted(filenames):
                print(os.path.relpath(os.path.join(dirpath, fn), ROOT))


if __name__ == "__main__":
    main()
