#!/usr/bin/env bash
# Measures what each size lever saves on the mipsel router build and prints the
# table for docs/router-builds.md: every row is one `scripts/build-router.sh`
# build of the current source with some settings changed, compared with the row
# it names as its base.
#
#   scripts/size-levers.sh [ROW...]     (default: every row, in order)
#
# Rows (a row's base is built too, for the difference, unless SIZE_LEVERS_BASES=0):
#   dist     the standalone dist build as it was before these levers: default features
#            (tls embedded-roots), panic messages, no -Z fmt-debug, zig's libc unoptimised
#   pkg      dist without embedded roots (the OpenWrt package: ROUTER_NO_DEFAULT_FEATURES=1
#            ROUTER_FEATURES=tls; it depends on ca-bundle)
#   abort    pkg + -C panic=immediate-abort (ROUTER_PANIC_IMMEDIATE_ABORT=1)
#   shallow  abort + -Z fmt-debug=shallow
#   none     abort + -Z fmt-debug=none (instead of shallow; ureq-proto stays at shallow)
#   zigos    shallow + -C link-arg=-Os: zig builds its libc parts for size, not Debug
#   nounwind zigos + those parts without unwind tables and no .eh_frame_hdr
#   delay    nounwind + the fuller MIPS delay-slot filling
#   tail     delay + MIPS tail calls
#   fmtnone  tail with -Z fmt-debug=none instead of shallow (ureq-proto stays at shallow):
#            the package build as the script makes it by default
#   roots    fmtnone with the embedded roots back: the standalone dist build as made now
#   s        shallow with opt-level "s" instead of "z"
#   noloc    shallow without -Z location-detail=none
#   nostd    shallow without -Z build-std-features=optimize_for_size
#   vfe      shallow + -Z virtual-function-elimination (drops unused trait-object methods)
#   inline   shallow + -C llvm-args=-inline-threshold=0 (LLVM inlines even less than at "z")
#
# Each row builds in its own target/size-levers/<row>/ so that a rerun after a
# code change recompiles only aliddns (std and the dependencies stay cached).
# A cold row takes several minutes (std is rebuilt); the rows run one after another.
# Exit status: 0 printed, 1 some row did not build (its line says so; log in target/size-levers/).
set -euo pipefail
cd "$(dirname "$0")/.."
T=mipsel-unknown-linux-musl
LOC="-Z location-detail=none"
UNW="-C force-unwind-tables=no"
ZOS="-C link-arg=-Os"
NOUNW="-C link-arg=-fno-unwind-tables -C link-arg=-fno-asynchronous-unwind-tables -C link-arg=-Wl,--no-eh-frame-hdr"
PKG="ROUTER_NO_DEFAULT_FEATURES=1;ROUTER_FEATURES=tls"

# name|base|lever|env (;-separated assignments, applied on top of a clean slate)
OLD="ROUTER_MIPS_FILL_DELAY_SLOTS=0;ROUTER_MIPS_TAIL_CALLS=0"
SHALLOW="ROUTER_FMT_DEBUG=shallow" # -Z fmt-debug=shallow for every crate
NOFMT="ROUTER_FMT_DEBUG="          # no -Z fmt-debug at all
SH="$SHALLOW;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW"
ROWS=(
	"dist|-|the dist build before these levers: \`tls embedded-roots\`, \`-Z location-detail=none -C force-unwind-tables=no\`, optimize_for_size, opt-level z|$OLD;ROUTER_PANIC_IMMEDIATE_ABORT=0;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW;$NOFMT"
	"pkg|dist|no embedded roots (package build)|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=0;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW;$NOFMT"
	"abort|pkg|\`-C panic=immediate-abort\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW;$NOFMT"
	"shallow|abort|\`-Z fmt-debug=shallow\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;$SH"
	"none|abort|\`-Z fmt-debug=none\` (instead of shallow; ureq-proto stays at shallow)|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW;ROUTER_FMT_DEBUG=none"
	"zigos|shallow|\`-C link-arg=-Os\`: zig builds its libc parts for size|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW $ZOS;$SHALLOW"
	"nounwind|zigos|those libc parts without unwind tables, no \`.eh_frame_hdr\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;ROUTER_SIZE_RUSTFLAGS=$LOC $UNW $ZOS $NOUNW;$SHALLOW"
	"delay|nounwind|MIPS delay-slot filler searches forward and into successors|$PKG;ROUTER_MIPS_TAIL_CALLS=0;$SHALLOW"
	"tail|delay|MIPS tail calls (\`-C llvm-args=-mips-tail-calls=1\`)|$PKG;$SHALLOW"
	"fmtnone|tail|\`-Z fmt-debug=none\` instead of shallow, ureq-proto kept at shallow (the package build as made now)|$PKG"
	"roots|fmtnone|embedded roots back (the standalone dist build as made now)|"
	"s|shallow|opt-level \"s\" instead of \"z\"|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;$SH;CARGO_PROFILE_RELEASE_OPT_LEVEL=s"
	"noloc|shallow|without \`-Z location-detail=none\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;ROUTER_SIZE_RUSTFLAGS=$UNW;$SHALLOW"
	"nostd|shallow|without \`-Z build-std-features=optimize_for_size\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;$SH;ROUTER_STD_FEATURES="
	"vfe|shallow|\`-Z virtual-function-elimination\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;$SH -Z virtual-function-elimination"
	"inline|shallow|\`-C llvm-args=-inline-threshold=0\`|$OLD;$PKG;ROUTER_PANIC_IMMEDIATE_ABORT=1;$SH -C llvm-args=-inline-threshold=0"
)

row_field() { # $1 = row name, $2 = field number (1-based)
	local r
	for r in "${ROWS[@]}"; do
		[ "${r%%|*}" = "$1" ] && {
			printf '%s' "$r" | cut -d'|' -f"$2"
			return 0
		}
	done
	echo "size-levers: unknown row $1" >&2
	exit 2
}

want=("$@")
if [ "${#want[@]}" = 0 ]; then
	for r in "${ROWS[@]}"; do want+=("${r%%|*}"); done
fi

declare -A RAW XZ
build_row() { # $1 = row name; sets RAW[$1] XZ[$1]
	local name=$1 dir assigns=() a
	[ -n "${RAW[$name]:-}" ] && return 0
	dir="$PWD/target/size-levers/$name"
	IFS=';' read -r -a assigns <<<"$(row_field "$name" 4)"
	# A clean slate: no lever variable leaks in from the caller's environment.
	local clean=(-u ROUTER_NO_DEFAULT_FEATURES -u ROUTER_FEATURES -u ROUTER_PANIC_IMMEDIATE_ABORT
		-u ROUTER_SIZE_RUSTFLAGS -u ROUTER_STD_FEATURES -u ROUTER_RUSTFLAGS -u CARGO_PROFILE_RELEASE_OPT_LEVEL
		-u ROUTER_MIPS_FILL_DELAY_SLOTS -u ROUTER_MIPS_TAIL_CALLS -u ROUTER_FMT_DEBUG)
	echo "size-levers: building $name: ${assigns[*]:-(defaults)}" >&2
	env "${clean[@]}" ${assigns[@]+"${assigns[@]}"} CARGO_TARGET_DIR="$dir" DIST_DIR="$dir/dist" \
		scripts/build-router.sh "$T" >"$dir.log" 2>&1 || {
		a=$?
		grep -m 3 '^error' "$dir.log" >&2 || tail -n 5 "$dir.log" >&2
		echo "size-levers: build of $name failed (exit $a, log $dir.log)" >&2
		RAW[$name]=failed
		return 0
	}
	RAW[$name]=$(wc -c <"$dir/dist/aliddns-$T" | tr -d ' ')
	XZ[$name]=$(xz -9 -c "$dir/dist/aliddns-$T" | wc -c | tr -d ' ')
}

mkdir -p target/size-levers
rows_out=()
failed=0
for name in "${want[@]}"; do
	base=$(row_field "$name" 2)
	if [ "${SIZE_LEVERS_BASES:-1}" = 0 ] && [ -z "${RAW[$base]:-}" ]; then base=-; fi
	[ "$base" != - ] && build_row "$base"
	build_row "$name"
	if [ "${RAW[$name]}" = failed ]; then
		rows_out+=("| \`$name\` $(row_field "$name" 3) | does not build | | | | |")
		failed=1
	elif [ "$base" = - ] || [ "${RAW[$base]}" = failed ]; then
		rows_out+=("| \`$name\` $(row_field "$name" 3) | ${RAW[$name]} | ${XZ[$name]} | | | |")
	else
		rows_out+=("| \`$name\` $(row_field "$name" 3) | ${RAW[$name]} | ${XZ[$name]} | $((RAW[$name] - RAW[$base])) | $((XZ[$name] - XZ[$base])) | $base |")
	fi
done
echo "| lever | bytes | \`xz -9\` bytes | Δ bytes | Δ xz | vs row |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
printf '%s\n' "${rows_out[@]}"
echo
echo "($T, $(rustup run "${ROUTER_TOOLCHAIN:-nightly}" rustc --version), source $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+changes'))"
exit "$failed"
