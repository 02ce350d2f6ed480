#!/usr/bin/env bash
# Memory soak of `aliddns serve`: millions of requests with wrk on 127.0.0.1, the
# server's VmRSS printed about every million, and a verdict on growth.
#
#   scripts/soak-serve.sh [options]
#     --bin PATH        the aliddns binary (default: $DIST_DIR/aliddns-x86_64-unknown-linux-musl,
#                       DIST_DIR defaulting to dist; build it with scripts/build-router.sh)
#     --runner CMD      run the binary through CMD, e.g. qemu-mipsel (RSS is then qemu's)
#     --millions N      requests per phase, in millions (default 15; decimals allowed)
#     --step N          print a row every N requests (default 1000000)
#     --phases LIST     comma-separated: valid (DefaultRoute, right token), unauth (wrong
#                       token, answered 401) (default valid,unauth)
#     --threads T --conns C   wrk threads and connections (default 2 and 64)
#     --max-rss-kb K    verdict: VmRSS must stay at or below K KB (default 8192)
#     --max-growth-pct P  verdict: over the last 2/3 of each phase VmRSS may grow at most
#                       P % above its value at the 1/3 mark (default 5), or 128 KB when that
#                       is more: the allocator maps its heap 64 KB at a time, so on a 1.6 MB
#                       server one late mapping reads as 4 %; a leak of one byte per request
#                       over the 2/3 of a 1 M phase is 650 KB
#
# The simulator (alidns-sim, host release build) backs the server; DefaultRoute and a
# wrong token never reach it, so the load measures the server alone. Every phase
# runs wrk in rounds sized from the measured rate so that a row is printed about
# every --step requests; a row shows the requests served so far (wrk's count) and
# VmRSS/VmHWM from /proc. Everything binds to 127.0.0.1; the whole run is killed
# after SOAK_TIME_LIMIT seconds (default 3600).
# Exit status: 0 flat, 1 the verdict failed or requests failed, 2 usage or setup.
set -euo pipefail
# shellcheck source=scripts/lib/serve-bench.sh
. "$(dirname "$0")/lib/serve-bench.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DIST="${DIST_DIR:-dist}"
BIN="$DIST/aliddns-x86_64-unknown-linux-musl"
RUNNER=""
MILLIONS=15
STEP=1000000
PHASES="valid,unauth"
THREADS=2
CONNS=64
MAX_RSS_KB=8192
MAX_GROWTH_PCT=5
LIMIT="${SOAK_TIME_LIMIT:-3600}"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case "$1" in
	--bin) BIN=$2 ;;
	--runner) RUNNER=$2 ;;
	--millions) MILLIONS=$2 ;;
	--step) STEP=$2 ;;
	--phases) PHASES=$2 ;;
	--threads) THREADS=$2 ;;
	--conns) CONNS=$2 ;;
	--max-rss-kb) MAX_RSS_KB=$2 ;;
	--max-growth-pct) MAX_GROWTH_PCT=$2 ;;
	*) usage ;;
	esac
	shift 2
done

die() {
	echo "soak-serve: $*" >&2
	exit 2
}
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (Debian package wrk)"
[ -x "$BIN" ] || die "no binary at $BIN (build it: scripts/build-router.sh x86_64-unknown-linux-musl)"
if [ -n "$RUNNER" ]; then command -v "$RUNNER" >/dev/null 2>&1 || die "runner $RUNNER not found"; fi
TOTAL=$(awk -v m="$MILLIONS" 'BEGIN { printf "%d", m * 1000000 }')
if [ "$STEP" -le 0 ] || [ "$TOTAL" -lt "$STEP" ]; then die "--millions must cover at least one --step"; fi

bench_setup "$LIMIT"

echo "== building the simulator (host, release)" >&2
cargo build --release --quiet -p alidns-sim --bin alidns-sim
SIM="${CARGO_TARGET_DIR:-target}/release/alidns-sim"

start_sim "$SIM" "$TMP"

SECRET=$(new_secret)
# One timestamp for the whole run; max_skew=86400 keeps it valid.
TS=$(date +%s)
TOKEN=$(printf '%s@%s' "$SECRET" "$TS" | sha1sum | cut -d' ' -f1)
write_serve_conf "$TMP/aliddns.conf" max_skew=86400
chmod 600 "$TMP/aliddns.conf"
# Every unauthenticated request logs a warning line: keep the first 200 lines of
# the log (for the listening line) and discard the rest instead of filling the disk.
# shellcheck disable=SC2086 # RUNNER is a command name or empty
$RUNNER "$BIN" -c "$TMP/aliddns.conf" serve --listen 127.0.0.1:0 \
	2> >(sed -u -n '1,200p' >"$TMP/serve.log") >/dev/null &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
URL=$(wait_url "$TMP/serve.log")

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVE_PID/status"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVE_PID/status"; }

cat >"$TMP/req.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"action":"DefaultRoute"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Edge API/1.4.1"
wrk.headers["Timestamp"] = os.getenv("SOAK_TS")
wrk.headers["Token"] = os.getenv("SOAK_TOKEN")
EOF

echo "== soak: $BIN${RUNNER:+ (under $RUNNER)} at $URL, pid $SERVE_PID; $(nproc) CPUs;" \
	"wrk -t$THREADS -c$CONNS; $TOTAL requests per phase" >&2
echo "idle: VmRSS $(rss) KB"
status=0

# Runs one wrk round of $1 seconds; sets DONE (requests), BAD (non-2xx/3xx) and ERR (socket errors).
wrk_round() {
	local out
	out=$(SOAK_TS=$TS SOAK_TOKEN=$TOKEN_NOW wrk -t"$THREADS" -c"$CONNS" -d"$1s" -s "$TMP/req.lua" "$URL")
	DONE=$(echo "$out" | awk '/requests in/ { print $1; exit }')
	BAD=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF; exit }')
	ERR=$(echo "$out" | awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10; exit }')
	DONE=${DONE:-0} BAD=${BAD:-0} ERR=${ERR:-0}
}

IFS=, read -ra phase_list <<<"$PHASES"
for phase in "${phase_list[@]}"; do
	case "$phase" in
	valid) TOKEN_NOW=$TOKEN want_bad=no ;;
	unauth) TOKEN_NOW=0000000000000000000000000000000000000000 want_bad=all ;;
	*) die "unknown phase $phase (valid, unauth)" ;;
	esac
	echo
	echo "### phase $phase: VmRSS every ~$STEP requests"
	echo "| requests | seconds | req/s | VmRSS KB | VmHWM KB |"
	echo "|---:|---:|---:|---:|---:|"
	printf '| %s | %s | %s | %s | %s |\n' 0 0 - "$(rss)" "$(hwm)"
	served=0 bad=0 errs=0 rate=0 secs=0
	rows=() # "requests rss"
	next=$STEP
	while [ "$served" -lt "$TOTAL" ]; do
		# Size the round from the measured rate (a 3 s probe first).
		if [ "$rate" -gt 0 ]; then
			d=$(((next - served + rate - 1) / rate))
			[ "$d" -ge 1 ] || d=1
		else
			d=3
		fi
		wrk_round "$d"
		served=$((served + DONE))
		bad=$((bad + BAD))
		errs=$((errs + ERR))
		secs=$((secs + d))
		# The phase's average so far: one slow round (a busy machine) does not
		# make the next round overshoot the next row by much.
		rate=$((served / secs))
		if [ "$rate" -le 0 ]; then
			echo "soak-serve: wrk made no requests; is the server alive?" >&2
			exit 1
		fi
		if [ "$served" -ge "$next" ] || [ "$served" -ge "$TOTAL" ]; then
			r=$(rss)
			printf '| %s | %s | %s | %s | %s |\n' "$served" "$secs" "$rate" "$r" "$(hwm)"
			rows+=("$served $r")
			while [ "$next" -le "$served" ]; do next=$((next + STEP)); done
		fi
	done
	# Expected answers: all 2xx when valid, none when unauthenticated (401).
	if [ "$want_bad" = no ] && [ "$bad" -ne 0 ]; then
		echo "FAIL ($phase): $bad answers were not 2xx" >&2
		status=1
	fi
	if [ "$want_bad" = all ] && [ "$bad" -lt $((served - errs)) ]; then
		echo "FAIL ($phase): $((served - bad)) answers were 2xx with a wrong token" >&2
		status=1
	fi
	# Verdict: max RSS, and growth over the last 2/3 (from the row at the 1/3 mark).
	verdict=$(printf '%s\n' "${rows[@]}" | awk -v total="$served" -v maxkb="$MAX_RSS_KB" -v maxpct="$MAX_GROWTH_PCT" '
		{ n[NR] = $1; r[NR] = $2; if ($2 > max) max = $2 }
		END {
			base = r[1]
			for (i = 1; i <= NR; i++) if (n[i] <= total / 3) base = r[i]
			late = 0
			for (i = 1; i <= NR; i++) if (n[i] > total / 3 && r[i] > late) late = r[i]
			if (late == 0) late = base
			g = (late - base) * 100 / base
			ok = (max <= maxkb && (g <= maxpct || late - base <= 128)) ? "PASS" : "FAIL"
			printf "%s max_rss_kb=%d (limit %d) rss_at_third_kb=%d late_max_kb=%d growth_pct=%.1f (limit %s, or 128 KB)", ok, max, maxkb, base, late, g, maxpct
		}')
	echo
	echo "verdict ($phase, $served requests, $bad non-2xx, $errs socket errors): $verdict"
	case "$verdict" in PASS*) ;; *) status=1 ;; esac
done
kill -0 "$SERVE_PID" 2>/dev/null || {
	echo "FAIL: the server died" >&2
	status=1
}
exit "$status"
