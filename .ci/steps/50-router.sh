#!/usr/bin/env bash
# CI step: build the router binaries for 32-bit MIPS (little- and big-endian),
# enforce the size budget, and run the CLI integration tests against them under
# qemu-user (host-built test harness, emulated binary).
#
# Two kinds of build: the standalone dist binaries (default features, with the
# embedded roots) for every target in the list, and the OpenWrt package build of
# mipsel (ROUTER_NO_DEFAULT_FEATURES=1 ROUTER_FEATURES=tls: no embedded roots, the
# package depends on ca-bundle). The package build must meet the size budget,
# scripts/size-report.sh's default: 1,200,000 B raw and 450,000 B after xz -9 (what
# flash stores). The standalone mipsel build, which carries the roots on top:
# STANDALONE_MAX_BYTES / STANDALONE_MAX_XZ_BYTES below. The tests run against all of
# them, so each side of the "no CA bundle found" fallback (tests/tls.rs) and the
# error texts of a -Z fmt-debug=none build (tests/errors.rs) run emulated.
#
# When a tool cannot be installed (nightly + rust-src, zig, cargo-zigbuild, qemu)
# this step prints a SKIPPED line and exits 0; every other failure fails CI.
# ROUTER_CI_TARGETS overrides the emulated targets (default: mipsel and mips).
set -euo pipefail
cd "$(dirname "$0")/../.."
step_start=$(date +%s)
# shellcheck source=.ci/lib.sh
. .ci/lib.sh

skip() {
	echo "################################################################"
	echo "SKIPPED: router builds (.ci/steps/50-router.sh): $*"
	echo "################################################################"
	exit 0
}
elapsed() { echo "$(($(date +%s) - step_start)) s"; }

targets="${ROUTER_CI_TARGETS:-mipsel-unknown-linux-musl mips-unknown-linux-musl}"
pkg_target=mipsel-unknown-linux-musl # the package build, built and tested too
# The standalone mipsel budget: the package budget plus what the embedded roots cost
# (about +58,600 B raw, +44,400 B xz: row `roots` in docs/router-builds.md), rounded up.
STANDALONE_MAX_BYTES=1260000
STANDALONE_MAX_XZ_BYTES=495000

# qemu-user, file and xz from Debian.
need_pkgs=()
for t in $targets $pkg_target; do
	q="qemu-${t%%-*}"
	command -v "$q" >/dev/null 2>&1 || need_pkgs=(qemu-user)
done
command -v file >/dev/null 2>&1 || need_pkgs+=(file)
command -v xz >/dev/null 2>&1 || need_pkgs+=(xz-utils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	apt_install "${need_pkgs[@]}" || skip "cannot install ${need_pkgs[*]} (not root, no apt-get, or apt-get failed)"
fi
for t in $targets $pkg_target; do
	q="qemu-${t%%-*}"
	command -v "$q" >/dev/null 2>&1 || skip "$q is not available after installing qemu-user"
done
# qemu-user 7.2 (Debian 12's) mishandles a 32-bit guest's mremap that shrinks a
# mapping made of several adjacent mmaps, as dlmalloc does when it trims its heap:
# the guest then faults on memory it still owns. The same i686 binary runs natively
# and under qemu 10, and crashes under qemu-i386 7.2 (docs/router-builds.md). Take
# qemu-user from bookworm-backports when the distribution's is older than 8.
qemu_major() { "$1" --version 2>/dev/null | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' | head -n1; }
q="qemu-${pkg_target%%-*}"
if [ "$(qemu_major "$q")" -lt 8 ] 2>/dev/null; then
	codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
	if [ "$codename" = bookworm ] && have apt-get && [ "$(id -u)" = 0 ]; then
		echo "== qemu-user $(qemu_major "$q").x is too old: installing it from bookworm-backports"
		printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
			"Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
			>/etc/apt/sources.list.d/aliddns-ci-backports.sources
		# shellcheck disable=SC2034 # read by apt_install (.ci/lib.sh): update the lists again
		APT_UPDATED=""
		apt_install -t bookworm-backports qemu-user || true
	fi
	[ "$(qemu_major "$q")" -ge 8 ] 2>/dev/null ||
		skip "qemu-user $("$q" --version | head -n1) is older than 8, whose mremap breaks 32-bit guests"
fi
echo "   $("$q" --version | head -n1)"

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
pkg="$(pwd)/dist/ci-router-package"
rm -rf "$dist" "$pkg"
echo "== scripts/build-router.sh $targets"
# shellcheck disable=SC2086 # $targets is a list
DIST_DIR="$dist" scripts/build-router.sh $targets
echo "== ROUTER_NO_DEFAULT_FEATURES=1 ROUTER_FEATURES=tls scripts/build-router.sh $pkg_target (package build)"
DIST_DIR="$pkg" ROUTER_NO_DEFAULT_FEATURES=1 ROUTER_FEATURES=tls scripts/build-router.sh "$pkg_target"
echo "   built after $(elapsed)"

# Size budget, on both mipsel builds.
echo "== scripts/size-report.sh (package build: 1,200,000 B / 450,000 B)"
scripts/size-report.sh "$pkg"
if [ -e "$dist/aliddns-$pkg_target" ]; then
	echo "== scripts/size-report.sh (standalone build, embedded roots: $STANDALONE_MAX_BYTES B / $STANDALONE_MAX_XZ_BYTES B)"
	MIPSEL_MAX_BYTES=$STANDALONE_MAX_BYTES MIPSEL_MAX_XZ_BYTES=$STANDALONE_MAX_XZ_BYTES scripts/size-report.sh "$dist"
fi

# Integration tests against each emulated binary.
run_tests() { # $1 = binary, $2 = target
	local q="qemu-${2%%-*}"
	echo "== cargo test --test '*' with ALIDDNS_BIN=${1#"$(pwd)"/} ALIDDNS_RUNNER=$q"
	ALIDDNS_BIN="$1" ALIDDNS_RUNNER="$q" ALIDDNS_EXPECT_TARGET="$2" \
		cargo test -p aliddns --test '*'
	echo "   $2 tests passed after $(elapsed)"
}
for t in $targets; do
	run_tests "$dist/aliddns-$t" "$t"
done
run_tests "$pkg/aliddns-$pkg_target" "$pkg_target"
echo "== router step done in $(elapsed)"
