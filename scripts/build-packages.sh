#!/usr/bin/env bash
# OpenWrt packages of aliddns, without the OpenWrt SDK: .ipk (opkg, OpenWrt
# 24.10 and older) and .apk (apk v2, OpenWrt 25 and newer) for every OpenWrt
# arch name each static binary runs on, plus the feed indexes.
#
#   scripts/build-packages.sh [TARGET...]
#
# TARGET: a Rust musl triple or its short name (mipsel mips armv7 aarch64
# x86_64); default all five. Output (see scripts/openwrt_pkg.py for the layout):
#   dist/opkg/aliddns_<ver>-<rel>_<arch>.ipk, Packages, Packages.gz
#   dist/apk/<arch>/aliddns-<ver>-r<rel>.apk, APKINDEX.tar.gz; dist/apk/<key name>
# and luci-app-aliddns / luci-i18n-aliddns-zh-cn (arch all / noarch) when
# openwrt/luci-app-aliddns exists.
#
# The binaries are the router builds WITHOUT embedded CA roots (the package
# depends on ca-bundle): ROUTER_NO_DEFAULT_FEATURES=1 ROUTER_FEATURES=tls
# scripts/build-router.sh, into $PKG_BIN_DIR. A binary already there is reused
# when its `--version` (run natively or under qemu-user) shows this version and
# only the tls feature; otherwise it is built.
#
# Environment:
#   APK_SIGN_KEY      RSA private key (PEM file) that signs the apk packages and
#                     indexes; APK_SIGN_KEY_PEM: the same, as the key's text (CI secrets)
#   APK_KEY_NAME      the public key's file name in /etc/apk/keys/ (default
#                     aliddns.rsa.pub); without a key: a throwaway key named
#                     aliddns-throwaway.rsa.pub, and apk needs --allow-untrusted
#   SOURCE_DATE_EPOCH mtimes and build dates (default: the last commit's time)
#   PKG_BIN_DIR       where the binaries are (default dist/pkgbin)
#   LUCI_APP_DIR      the LuCI app (default openwrt/luci-app-aliddns)
#   PO2LMO            the .po -> .lmo generator (default python3 scripts/po2lmo.py)
#   DIST_DIR          output directory (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

say() { printf 'build-packages: %s\n' "$*" >&2; }
die() {
	printf 'build-packages: ERROR: %s\n' "$*" >&2
	exit 1
}

case "${1-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
esac

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac }
DIST="$(abs "${DIST_DIR:-dist}")"
BIN_DIR="$(abs "${PKG_BIN_DIR:-dist/pkgbin}")"
LUCI_DIR="$(abs "${LUCI_APP_DIR:-openwrt/luci-app-aliddns}")"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[ -n "$VERSION" ] || die "no version in Cargo.toml"
if [ -z "${SOURCE_DATE_EPOCH-}" ]; then
	SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH

targets=()
for arg in "${@:-mipsel mips armv7 aarch64 x86_64}"; do
	for t in $arg; do
		case "$t" in
		mipsel) t=mipsel-unknown-linux-musl ;;
		mips) t=mips-unknown-linux-musl ;;
		armv7) t=armv7-unknown-linux-musleabihf ;;
		aarch64) t=aarch64-unknown-linux-musl ;;
		x86_64) t=x86_64-unknown-linux-musl ;;
		*-linux-musl*) ;;
		*) die "unknown target '$t'" ;;
		esac
		targets+=("$t")
	done
done

# Whether $1 is this version's tls-only build for target $2.
binary_ok() {
	local bin="$1" target="$2" out runner=""
	[ -x "$bin" ] || return 1
	case "$target" in
	x86_64-*) ;;
	armv7-*) runner=qemu-arm ;;
	*) runner="qemu-${target%%-*}" ;;
	esac
	if [ -n "$runner" ] && ! command -v "$runner" >/dev/null 2>&1; then
		say "cannot run $bin to check its version ($runner missing): rebuilding"
		return 1
	fi
	out="$($runner "$bin" --version 2>/dev/null)" || return 1
	case "$out" in
	"aliddns $VERSION ($target)"*"features: tls") return 0 ;;
	*)
		say "$bin is another build ($(echo "$out" | tr '\n' ' ')): rebuilding"
		return 1
		;;
	esac
}

missing=()
for t in "${targets[@]}"; do
	if binary_ok "$BIN_DIR/aliddns-$t" "$t"; then
		say "reusing $BIN_DIR/aliddns-$t"
	else
		missing+=("$t")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "building ${missing[*]} (tls, no embedded roots)"
	ROUTER_NO_DEFAULT_FEATURES=1 ROUTER_FEATURES=tls DIST_DIR="$BIN_DIR" scripts/build-router.sh "${missing[@]}"
	for t in "${missing[@]}"; do
		binary_ok "$BIN_DIR/aliddns-$t" "$t" || die "$BIN_DIR/aliddns-$t is not the expected build"
	done
fi

# The signing key.
command -v openssl >/dev/null 2>&1 || die "openssl is needed to sign the apk packages"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
key_name="${APK_KEY_NAME:-aliddns.rsa.pub}"
if [ -n "${APK_SIGN_KEY_PEM-}" ]; then
	(umask 077 && printf '%s\n' "$APK_SIGN_KEY_PEM" >"$work/key.pem")
	key="$work/key.pem"
elif [ -n "${APK_SIGN_KEY-}" ]; then
	key="$(abs "$APK_SIGN_KEY")"
	[ -r "$key" ] || die "APK_SIGN_KEY: cannot read $key"
else
	key_name=aliddns-throwaway.rsa.pub
	key="$work/key.pem"
	openssl genrsa -out "$key" 2048 2>/dev/null
	say "################################################################"
	say "NO SIGNING KEY (APK_SIGN_KEY / APK_SIGN_KEY_PEM): the apk packages and"
	say "indexes are signed with a throwaway key. Install them with"
	say "  apk add --allow-untrusted ./aliddns-...apk"
	say "or trust this build only: copy dist/apk/$key_name to /etc/apk/keys/."
	say "################################################################"
fi
openssl rsa -in "$key" -pubout -out "$work/pub.pem" 2>/dev/null || die "$key is not an RSA private key"

bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t=$BIN_DIR/aliddns-$t"); done
[ -d "$LUCI_DIR" ] || say "note: no LuCI app at $LUCI_DIR; building aliddns only"
# shellcheck disable=SC2086 # PO2LMO is a command line
python3 scripts/openwrt_pkg.py --out "$DIST" "${bins[@]}" --luci "$LUCI_DIR" \
	--po2lmo "${PO2LMO:-python3 $ROOT/scripts/po2lmo.py}" \
	--key "$key" --key-name "$key_name" --pubkey "$work/pub.pem"
say "done: $DIST/opkg and $DIST/apk (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
