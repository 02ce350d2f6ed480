#!/usr/bin/env bash
# CI step: OpenWrt packages without the SDK (issue 12). Builds the mipsel and
# x86_64 packages in both formats (.ipk, .apk) with scripts/build-packages.sh,
# checks their structure, signatures, binaries and maintainer scripts with
# scripts/check-packages.py (and, with scripts/test_check_packages.py, that
# it fails on packages broken the ways opkg and apk reject), and that two
# builds with the same key and SOURCE_DATE_EPOCH are byte-identical. The LuCI packages come from
# openwrt/luci-app-aliddns (LMO files by scripts/po2lmo.py).
#
# The router binaries are the tls-only build (the package depends on
# ca-bundle): 50-router's mipsel package build is reused, the x86_64 one is
# built here (a minute or two), never one left in dist/ by an older checkout. When a router build tool cannot be
# installed this step prints SKIPPED and exits 0, like 50-router.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
step_start=$(date +%s)
elapsed() { echo "$(($(date +%s) - step_start)) s"; }
skip() {
	echo "################################################################"
	echo "SKIPPED: OpenWrt packages (.ci/steps/60-packages.sh): $*"
	echo "################################################################"
	exit 0
}

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v file >/dev/null 2>&1 || need+=(file)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v qemu-mipsel >/dev/null 2>&1 || need+=(qemu-user)
if [ "${#need[@]}" -gt 0 ]; then
	apt_install "${need[@]}" || skip "cannot install ${need[*]} (not root, no apt-get, or apt-get failed)"
fi

rc=0
scripts/build-router.sh --setup || rc=$?
[ "$rc" = 75 ] && skip "a router build tool could not be installed"
[ "$rc" = 0 ] || exit "$rc"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
out="$(pwd)/dist/ci-packages"
rm -rf "$out" "$work/again"

# Binaries of this checkout only: build-packages.sh reuses any binary of the same
# version it finds, so a dist/pkgbin left by an older checkout would be packaged.
# 50-router has just built the mipsel package binary (the same flags): take it.
bins="$(pwd)/dist/ci-packages-bin"
rm -rf "$bins"
mkdir -p "$bins"
if [ -x dist/ci-router-package/aliddns-mipsel-unknown-linux-musl ]; then
	cp dist/ci-router-package/aliddns-mipsel-unknown-linux-musl "$bins/"
fi
export PKG_BIN_DIR="$bins"

echo "== scripts/build-packages.sh mipsel x86_64"
SOURCE_DATE_EPOCH=1700000000 APK_SIGN_KEY="$work/key.pem" DIST_DIR="$out" \
	scripts/build-packages.sh mipsel x86_64
echo "   built after $(elapsed)"

echo "== scripts/check-packages.py --luci"
python3 scripts/check-packages.py "$out" --luci

echo "== scripts/test_check_packages.py: the checker catches broken packages"
python3 scripts/test_check_packages.py "$out"

echo "== reproducible: a second build is byte-identical"
SOURCE_DATE_EPOCH=1700000000 APK_SIGN_KEY="$work/key.pem" DIST_DIR="$work/again" \
	scripts/build-packages.sh mipsel x86_64 >/dev/null 2>&1
diff -r "$out/opkg" "$work/again/opkg"
diff -r "$out/apk" "$work/again/apk"
echo "   identical"

echo "== without a key: a throwaway key, and the build says so"
DIST_DIR="$work/throwaway" scripts/build-packages.sh x86_64 >"$work/throwaway.log" 2>&1
grep -q 'allow-untrusted' "$work/throwaway.log"
ls "$work/throwaway/apk/aliddns-throwaway.rsa.pub" >/dev/null
echo "== packages step done in $(elapsed)"
