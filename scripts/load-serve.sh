#!/usr/bin/env bash
# Loopback load test of `aliddns serve` (release build) against the AliDNS simulator.
# Reports requests/s and latency percentiles for DefaultRoute and cached GetRoutes, and
# the server's RSS with 500 idle keep-alive connections held open (the limit is 512).
#
#   scripts/load-serve.sh [SECONDS_PER_BENCH (default 5)] [CLIENT_CONNS (default 4)]
#
# Everything listens on and connects to 127.0.0.1 only; every loop is bounded in
# requests and time, and the whole script is killed after 5 minutes.
set -euo pipefail
# shellcheck source=scripts/lib/serve-bench.sh
. "$(dirname "$0")/lib/serve-bench.sh"

SECS=${1:-5}
CONNS=${2:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Watchdog: the script never runs longer than 5 minutes.
bench_setup 300

bench_build

start_sim "$BIN/alidns-sim" "$TMP"
SECRET=$(new_secret)
write_serve_conf "$TMP/aliddns.conf"
"$BIN/aliddns" -c "$TMP/aliddns.conf" serve --listen 127.0.0.1:0 >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
URL=$(wait_url "$TMP/serve.log")
echo "== aliddns serve at $URL (pid $SERVE_PID), simulator at $SIM_URL; $(nproc) CPUs" >&2

LOAD="$BIN/examples/load_serve"
"$LOAD" bench --url "$URL" --secret "$SECRET" --action DefaultRoute --conns "$CONNS" --seconds "$SECS" --max 2000000
# The first GetRoutes fills the cache (one DescribeSupportLines); the rest are cached.
"$LOAD" bench --url "$URL" --secret "$SECRET" --action GetRoutes --conns 1 --seconds 1 --max 1 >/dev/null
"$LOAD" bench --url "$URL" --secret "$SECRET" --action GetRoutes --conns "$CONNS" --seconds "$SECS" --max 2000000
"$LOAD" idle --url "$URL" --secret "$SECRET" --pid "$SERVE_PID" --conns 500 --hold 3
echo "simulator calls: $(curl -s "${SIM_URL}_sim/calls" 2>/dev/null || echo '(curl not installed)')"
echo "binary: $(stat -c %s "$BIN/aliddns") bytes"
