#!/bin/sh
# Print the raw and `xz -9` size of every router binary in dist/ and enforce the
# mipsel budget (the binary most routers run, TLS included).
#
#   scripts/size-report.sh [DIST_DIR]
#
# Budget (decimal units, overridable for experiments):
#   MIPSEL_MAX_BYTES    (default 1200000)  stripped binary, 1.2 MB
#   MIPSEL_MAX_XZ_BYTES (default  450000)  after `xz -9`,    450 KB
# The budget is that of the OpenWrt package build (ROUTER_NO_DEFAULT_FEATURES=1
# ROUTER_FEATURES=tls: TLS, no embedded roots). The standalone dist build carries
# the Mozilla roots on top (about +58 KB, +44 KB xz); CI holds it to its own limits
# with the variables above (STANDALONE_MAX_* in .ci/steps/50-router.sh).
# Exit status: 0 within budget, 1 budget exceeded, 2 nothing to measure.
set -eu

cd "$(dirname "$0")/.."
DIST="${1:-${DIST_DIR:-dist}}"
MAX_RAW="${MIPSEL_MAX_BYTES:-1200000}"
MAX_XZ="${MIPSEL_MAX_XZ_BYTES:-450000}"
BUDGET_TARGET="mipsel-unknown-linux-musl"

command -v xz >/dev/null 2>&1 || {
	echo "size-report: xz is not installed (Debian package xz-utils)" >&2
	exit 2
}

found=0
status=0
printf '| %-32s | %11s | %11s |\n' "target" "bytes" "xz -9 bytes"
printf '| %-32s | %11s | %11s |\n' "--------------------------------" "----------:" "----------:"
for bin in "$DIST"/aliddns-*; do
	[ -f "$bin" ] || continue
	found=1
	target="${bin##*/aliddns-}"
	raw=$(wc -c <"$bin" | tr -d ' ')
	xzs=$(xz -9 -c "$bin" | wc -c | tr -d ' ')
	printf '| %-32s | %11s | %11s |\n' "$target" "$raw" "$xzs"
	if [ "$target" = "$BUDGET_TARGET" ]; then
		mipsel_raw=$raw
		mipsel_xz=$xzs
	fi
done

if [ "$found" = 0 ]; then
	echo "size-report: no binaries in $DIST/ (run scripts/build-router.sh first)" >&2
	exit 2
fi
if [ -z "${mipsel_raw:-}" ]; then
	echo "size-report: no $BUDGET_TARGET binary in $DIST/: the budget cannot be checked" >&2
	exit 2
fi

echo
echo "budget ($BUDGET_TARGET): bytes $mipsel_raw / $MAX_RAW (margin $((MAX_RAW - mipsel_raw))), xz -9 $mipsel_xz / $MAX_XZ (margin $((MAX_XZ - mipsel_xz)))"
if [ "$mipsel_raw" -gt "$MAX_RAW" ]; then
	echo "SIZE BUDGET EXCEEDED: $BUDGET_TARGET is $mipsel_raw bytes, over the $MAX_RAW-byte budget by $((mipsel_raw - MAX_RAW))" >&2
	status=1
fi
if [ "$mipsel_xz" -gt "$MAX_XZ" ]; then
	echo "SIZE BUDGET EXCEEDED: $BUDGET_TARGET is $mipsel_xz bytes after xz -9, over the $MAX_XZ-byte budget by $((mipsel_xz - MAX_XZ))" >&2
	status=1
fi
[ "$status" = 0 ] && echo "size budget: OK"
exit "$status"
