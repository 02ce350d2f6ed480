#!/usr/bin/env bash
# Loopback attacks on `aliddns serve` (release build), one after another, each on a
# fresh server: for each, the p50/p99/max latency of a legitimate DefaultRoute sent
# every 10 ms on a new connection while the attack runs, the server's RSS (before and
# peak) and CPU time, and for the log flood the bytes and lines the server logged.
# Goal (issue 9): p99 < 50 ms under every attack, RSS < 16 MB.
#
#   scripts/attack-serve.sh [SECONDS_PER_ATTACK (default 5)] [ATTACK ...]
#
# Attacks: wrong-token idle-waves no-read log-flood big-body pre-auth-body table-full
# trickle (see ATTACKS in examples/load_serve.rs). Attackers connect from
# 127.0.0.2-127.0.0.17, the legitimate client from 127.0.0.1; nothing leaves the
# machine. Every loop is bounded and the whole script is killed after 10 minutes.
set -euo pipefail
# shellcheck source=scripts/lib/serve-bench.sh
. "$(dirname "$0")/lib/serve-bench.sh"

SECS=${1:-5}
shift || true
ATTACKS=("$@")
[ ${#ATTACKS[@]} -gt 0 ] ||
    ATTACKS=(wrong-token idle-waves no-read log-flood big-body pre-auth-body table-full trickle)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bench_setup 600

bench_build
LOAD="$BIN/examples/load_serve"

start_sim "$BIN/alidns-sim" "$TMP"
SECRET=$(new_secret)
write_serve_conf "$TMP/aliddns.conf"
chmod 600 "$TMP/aliddns.conf"
echo "== $(nproc) CPUs; binary $(stat -c %s "$BIN/aliddns") bytes; $SECS s per attack" >&2

for attack in "${ATTACKS[@]}"; do
    log="$TMP/serve-$attack.log"
    "$BIN/aliddns" -c "$TMP/aliddns.conf" serve --listen 127.0.0.1:0 >"$log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    url=$(wait_url "$log")
    # Fill the routes cache (the no-read attack asks for routes).
    "$LOAD" bench --url "$url" --secret "$SECRET" --action GetRoutes --conns 1 --seconds 1 --max 1 >/dev/null
    before=$(stat -c %s "$log")
    "$LOAD" attack --url "$url" --secret "$SECRET" --pid "$pid" --action "$attack" --seconds "$SECS"
    after=$(stat -c %s "$log")
    lines=$(tail -c +"$((before + 1))" "$log" | wc -l)
    echo "${attack}: server log grew by $((after - before)) bytes, $lines lines" \
        "($(tail -c +"$((before + 1))" "$log" | grep -c 'suppressed' || true) 'suppressed' lines)"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
