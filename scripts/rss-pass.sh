#!/usr/bin/env bash
# Peak RSS of one `aliddns update` pass of the static x86_64 router build, over
# HTTPS to the local AliDNS simulator, for a pass that changes every record, one
# where nothing changed (state file fresh: no API call) and a forced one (every
# record checked with AliDNS). Measured by examples/rss_pass.rs (fork, exec,
# wait4's ru_maxrss) whose own floor is printed too, and read exactly from
# /proc/PID/status as the pass exits: VmHWM, and its split into anonymous memory
# (heap, stacks, data: what aliddns allocates) and the executable's pages mapped
# from the page cache (ru_maxrss can read up to 128 KB per CPU low on Linux 6.2+,
# see examples/rss_pass.rs). Loopback only, bounded runs.
#
#   scripts/rss-pass.sh [RUNS]    (default 5 runs per case; the median is printed)
#
# RSS_BIN    the binary to measure (default dist/aliddns-x86_64-unknown-linux-musl,
#            built with scripts/build-router.sh and the caller's ROUTER_* settings
#            when missing)
# The CA file handed to aliddns is the machine's /etc/ssl/certs/ca-certificates.crt
# (about 150 roots, like OpenWrt's ca-bundle) with the test CA appended, so loading
# a real-sized bundle is part of the figure; without that file only the test CA.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
T=x86_64-unknown-linux-musl
bin=${RSS_BIN:-dist/aliddns-$T}
if [ ! -x "$bin" ]; then
	DIST_DIR=dist scripts/build-router.sh "$T" >&2
	bin=dist/aliddns-$T
fi
cargo build --release -q -p alidns-sim --bin alidns-sim
cargo build --release -q --example rss_pass
sim=target/release/alidns-sim
rss=target/release/examples/rss_pass

work=$(mktemp -d)
simpid=""
cleanup() {
	if [ -n "$simpid" ]; then kill "$simpid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

export ALIDDNS_PROC_ROOT="$PWD/tests/fixtures/proc-router"
system_bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$system_bundle" ]; then
	cat "$system_bundle" tests/fixtures/ca.pem >"$work/bundle.pem"
	bundle_note="$(grep -c 'BEGIN CERTIFICATE' "$work/bundle.pem") certificates ($system_bundle + test CA)"
else
	cp tests/fixtures/ca.pem "$work/bundle.pem"
	bundle_note="the test CA only (no $system_bundle here)"
fi

start_sim() { # $1 = number of records, seeded with an old value
	if [ -n "$simpid" ]; then
		kill "$simpid" 2>/dev/null || true
		wait "$simpid" 2>/dev/null || true
	fi
	local pair="tests/fixtures/server.pem,tests/fixtures/server.key"
	local args=(--tls "$pair" --domain example.com)
	for i in $(seq 1 "$1"); do args+=(--record "example.com,host$i,AAAA,240e:38a:6c1b:2e00::$i"); done
	rm -f "$work/sim.out" # the previous simulator's line names a closed port
	"$sim" "${args[@]}" >"$work/sim.out" 2>"$work/sim.err" &
	simpid=$!
	# Up to 60 s on a loaded machine; without a "listening on" line, say so and stop.
	for _ in $(seq 1 1200); do
		grep -q listening "$work/sim.out" 2>/dev/null && break
		sleep 0.05
	done
	endpoint=$(sed -n 's/^listening on //p' "$work/sim.out" 2>/dev/null || true)
	[ -n "$endpoint" ] || {
		echo "rss-pass: the simulator did not start; its stderr:" >&2
		cat "$work/sim.err" >&2
		exit 1
	}
}

write_conf() { # $1 = number of records
	{
		printf '[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint=%s\nstate_file=%s/state\nca_file=%s\n' \
			"$endpoint" "$work" "$work/bundle.pem"
		for i in $(seq 1 "$1"); do
			printf '[r%s]\ndomain=example.com\nsub_domain=host%s\ntype=AAAA\ninterface=pppoe-wan\n' "$i" "$i"
		done
	} >"$work/conf"
	chmod 600 "$work/conf"
}

measure() { # prints "maxrss hwm anon file" in KB; fails when aliddns did
	local kb code hwm anon file
	read -r kb code hwm anon file < <("$rss" -- "$bin" -c "$work/conf" update "$@")
	if [ "$code" != 0 ]; then
		echo "rss-pass: aliddns update $* exited $code" >&2
		exit 1
	fi
	echo "$kb $hwm $anon $file"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# "| maxrss | hwm | anon | file |" of the runs given as arguments: each column's median
cells() {
	local col out=""
	for col in 1 2 3 4; do out+=" $(printf '%s\n' "$@" | cut -d' ' -f$col | median) |"; done
	echo "$out"
}

floor=$(for _ in $(seq 1 "$runs"); do "$rss" --floor | cut -d' ' -f1; done | median)
printf '| records | pass | ru_maxrss (KB) | VmHWM (KB) | anon (KB) | file (KB) |\n| ---: | --- | ---: | ---: | ---: | ---: |\n'
for n in 1 20; do
	c=() u=() f=()
	for _ in $(seq 1 "$runs"); do
		start_sim "$n"
		write_conf "$n"
		rm -f "$work/state"
		c+=("$(measure)")
		u+=("$(measure)")
		f+=("$(measure --force)")
	done
	printf '| %s | changed (every record updated) |%s\n' "$n" "$(cells "${c[@]}")"
	printf '| %s | unchanged (state file fresh, no API call) |%s\n' "$n" "$(cells "${u[@]}")"
	printf "| %s | unchanged, \`--force\` (every record checked) |%s\n" "$n" "$(cells "${f[@]}")"
done
echo
echo "(median of $runs runs; $bin, $(stat -c %s "$bin") bytes, $("$bin" --version | tr '\n' ' ');"
echo " HTTPS to the simulator, CA file: $bundle_note; launcher floor $floor KB)"
