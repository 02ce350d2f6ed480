# shellcheck shell=bash
# Setup shared by scripts/load-serve.sh, attack-serve.sh and soak-serve.sh: the
# AliDNS simulator on 127.0.0.1 and an aliddns.conf for `aliddns serve` backed by it.
# Sourced (`. "$(dirname "$0")/lib/serve-bench.sh"`), not run. The caller has
# `set -euo pipefail` and calls bench_setup first; messages are prefixed with the
# caller's name (load-serve: ...).

# bench_setup LIMIT: a temp dir TMP and a list PIDS of processes, both cleaned up
# when the script exits, and a watchdog that ends the script after LIMIT seconds.
# The watchdog takes its sleep down with it when cleanup kills it, so no sleep is
# left behind holding the caller's pipe open.
bench_setup() {
	local limit=$1 name=${0##*/}
	TMP=$(mktemp -d)
	PIDS=()
	trap bench_cleanup EXIT
	(
		trap 'kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$limit" >/dev/null 2>&1 &
		s=$!
		wait "$s"
		echo "${name%.sh}: time limit of $limit s reached" >&2
		kill -TERM $$
	) &
	PIDS+=($!)
}

# bench_build: the release server and load generator (load-serve, attack-serve) and
# the simulator behind the server; BIN is where they are.
bench_build() {
	echo "== building (release)" >&2
	cargo build --release --quiet --bin aliddns --example load_serve
	cargo build --release --quiet -p alidns-sim --bin alidns-sim
	# shellcheck disable=SC2034 # read by the sourcing script
	BIN=target/release
}

# shellcheck disable=SC2317 # run by the EXIT trap
bench_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}

# wait_url LOG: waits up to 30 s for "...listening on http://127.0.0.1:PORT/" in the
# log file LOG (which may not exist yet); prints the URL, or the log and fails.
wait_url() {
	local log=$1
	for _ in $(seq 1 300); do
		if url=$(grep -so 'listening on http://127\.0\.0\.1:[0-9]*/' "$log" | head -n1); then
			echo "${url#listening on }"
			return 0
		fi
		sleep 0.1
	done
	local name=${0##*/}
	echo "${name%.sh}: no listening line in $log:" >&2
	cat "$log" >&2
	return 1
}

# start_sim SIM_BIN LOGDIR: raises the open-files limit to the hard limit (for this
# shell and all it starts later), starts the simulator SIM_BIN on 127.0.0.1 for
# example.com with its log in LOGDIR/sim.log, adds its pid to PIDS and sets SIM_URL.
start_sim() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	"$1" --listen 127.0.0.1:0 --domain example.com >"$2/sim.log" 2>&1 &
	PIDS+=($!)
	SIM_URL=$(wait_url "$2/sim.log")
}

# new_secret: prints a random httpdns secret (32 hex digits).
new_secret() {
	head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# write_serve_conf FILE [LINE ...]: writes to FILE the aliddns.conf of the serve
# benches: test credentials, the simulator at $SIM_URL as endpoint, and an [httpdns]
# section with secret $SECRET for example.com, to which each LINE (key=value) is added.
write_serve_conf() {
	local file=$1
	shift
	{
		cat <<CONF
[DEFAULT]
access_id=testid
access_key=testsecret
endpoint=$SIM_URL
[httpdns]
secret=$SECRET
domains=example.com
CONF
		if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
	} >"$file"
}
