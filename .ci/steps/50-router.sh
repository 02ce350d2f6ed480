#!/usr/bin/env bash
# CI step: build the router binaries for 32-bit MIPS (little- and big-endian),
# enforce the size budget, and run the CLI integration tests against them under
# qemu-user (host-built test harness, emulated binary).
#
# When a tool cannot be installed (nightly + rust-src, zig, cargo-zigbuild, qemu)
# this step prints a SKIPPED line and exits 0; every other failure fails CI.
# ROUTER_CI_TARGETS overrides the emulated targets (default: mipsel and mips).
set -euo pipefail
cd "$(dirname "$0")/../.."
step_start=$(date +%s)

skip() {
	echo "################################################################"
	echo "SKIPPED: router builds (.ci/steps/50-router.sh): $*"
	echo "################################################################"
	exit 0
}
elapsed() { echo "$(($(date +%s) - step_start)) s"; }

targets="${ROUTER_CI_TARGETS:-mipsel-unknown-linux-musl mips-unknown-linux-musl}"

# qemu-user, file and xz from Debian.
need_pkgs=()
for t in $targets; do
	q="qemu-${t%%-*}"
	command -v "$q" >/dev/null 2>&1 || need_pkgs=(qemu-user)
done
command -v file >/dev/null 2>&1 || need_pkgs+=(file)
command -v xz >/dev/null 2>&1 || need_pkgs+=(xz-utils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		skip "cannot install ${need_pkgs[*]} (not root or no apt-get)"
	fi
	echo "== apt-get install ${need_pkgs[*]}"
	apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null 2>&1 ||
		skip "apt-get could not install ${need_pkgs[*]}"
fi
for t in $targets; do
	q="qemu-${t%%-*}"
	command -v "$q" >/dev/null 2>&1 || skip "$q is not available after installing qemu-user"
done

# nightly + rust-src, zig, cargo-zigbuild (exit 75 = a tool could not be installed).
echo "== scripts/build-router.sh --setup"
rc=0
scripts/build-router.sh --setup || rc=$?
if [ "$rc" = 75 ]; then
	skip "a build tool could not be installed (see the MISSING TOOL line above)"
elif [ "$rc" != 0 ]; then
	echo "router step: tool setup failed (exit $rc)" >&2
	exit "$rc"
fi
echo "   tools ready after $(elapsed)"

# Build (failures fail CI).
dist="$(pwd)/dist/ci-router"
rm -rf "$dist"
echo "== scripts/build-router.sh $targets"
# shellcheck disable=SC2086 # $targets is a list
DIST_DIR="$dist" scripts/build-router.sh $targets
echo "   built after $(elapsed)"

# Size budget (needs the mipsel binary).
echo "== scripts/size-report.sh"
scripts/size-report.sh "$dist"

# Integration tests against each emulated binary.
for t in $targets; do
	q="qemu-${t%%-*}"
	echo "== cargo test --test '*' with ALIDDNS_BIN=dist/ci-router/aliddns-$t ALIDDNS_RUNNER=$q"
	ALIDDNS_BIN="$dist/aliddns-$t" ALIDDNS_RUNNER="$q" ALIDDNS_EXPECT_TARGET="$t" \
		cargo test -p aliddns --test '*'
	echo "   $t tests passed after $(elapsed)"
done
echo "== router step done in $(elapsed)"
