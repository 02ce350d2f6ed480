#!/usr/bin/env bash
# Measures `aliddns update` against the local AliDNS simulator: peak RSS and wall
# time with 1 and 20 records, for a pass that changes every record and for one
# where nothing changed (state file fresh: zero API calls) and a forced one
# (every record verified with AliDNS). Uses GNU time (`/usr/bin/time -v`).
# Loopback only; bounded: a fixed number of runs.
#
# Usage: scripts/bench-update.sh [RUNS]   (default 5 runs per case; median reported)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time"; (apt-get update -qq && apt-get install -y -qq time) >/dev/null
fi
cargo build --release -q --bin aliddns
cargo build --release -q -p alidns-sim --bin alidns-sim
bin=target/release/aliddns
sim=target/release/alidns-sim

# `set -e` would otherwise end the script without a word when a step fails.
trap 'echo "error: scripts/bench-update.sh stopped at line $LINENO (exit status $?)" >&2' ERR

work=$(mktemp -d)
simpid=""
cleanup() { [ -n "$simpid" ] && kill "$simpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Addresses come from captured /proc files (interface source), so no echo
# service is involved and the figures are aliddns + the API round trips only.
export ALIDDNS_PROC_ROOT="$PWD/tests/fixtures/proc-router"

start_sim() { # $1 = number of records, seeded with an old value
  if [ -n "$simpid" ]; then kill "$simpid" 2>/dev/null || true; wait "$simpid" 2>/dev/null || true; fi
  local args=(--listen 127.0.0.1:0 --domain example.com)
  for i in $(seq 1 "$1"); do args+=(--record "example.com,host$i,AAAA,240e:38a:6c1b:2e00::$i"); done
  # A fresh file: the previous simulator's "listening on" line must not be read
  # before this one's shell has truncated it (it named a port now closed).
  rm -f "$work/sim.out"
  "$sim" "${args[@]}" >"$work/sim.out" 2>"$work/sim.err" &
  simpid=$!
  # A loaded machine can take seconds to start it: wait up to SIM_START_TIMEOUT
  # (default 60 s) for its "listening on" line, and stop with a clear error
  # rather than measuring against no simulator.
  local waited=0 limit=$((${SIM_START_TIMEOUT:-60} * 20))
  endpoint=""
  while [ -z "$endpoint" ]; do
    # (no file yet until the background shell has opened it: sed fails, not the script)
    endpoint=$(sed -n 's/^listening on //p' "$work/sim.out" 2>/dev/null || true)
    [ -n "$endpoint" ] && break
    if ! kill -0 "$simpid" 2>/dev/null; then
      echo "error: the simulator ($sim) exited before listening:" >&2
      sed 's/^/  /' "$work/sim.err" >&2
      simpid=""
      exit 1
    fi
    if [ "$waited" -ge "$limit" ]; then
      echo "error: the simulator ($sim) printed no 'listening on' line within ${SIM_START_TIMEOUT:-60} s" \
        "(set SIM_START_TIMEOUT to wait longer); its stderr:" >&2
      sed 's/^/  /' "$work/sim.err" >&2
      exit 1
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
}

write_conf() { # $1 = number of records
  {
    printf '[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint=%s\nstate_file=%s/state\n' "$endpoint" "$work"
    for i in $(seq 1 "$1"); do
      printf '[r%s]\ndomain=example.com\nsub_domain=host%s\ntype=AAAA\ninterface=pppoe-wan\n' "$i" "$i"
    done
  } >"$work/conf"
}

measure() { # prints "rss_kb wall_ms" (GNU time's own wall clock has 10 ms steps)
  local rss t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -v "$bin" -c "$work/conf" update "$@" >/dev/null 2>"$work/time.txt" || true
  t1=$(date +%s%N)
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  echo "$rss $(( (t1 - t0) / 100000 ))"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk '{printf "%.1f", $1/10}'; } # tenths of a millisecond -> ms
# The simulator's call count; empty (shown as "?") if it cannot be read.
calls() { curl -s --max-time 10 "${endpoint}_sim/calls" 2>/dev/null | sed -n 's/.*"total":\([0-9]*\).*/\1/p' || true; }

printf '| records | pass | API calls | peak RSS (KB) | wall (ms) |\n|---|---|---|---|---|\n'
for n in 1 20; do
  declare -a rss_c=() wall_c=() rss_u=() wall_u=() rss_f=() wall_f=()
  calls_c="" calls_u="" calls_f=""
  for _ in $(seq 1 "$runs"); do
    start_sim "$n"; write_conf "$n"; rm -f "$work/state"
    read -r r w < <(measure); rss_c+=("$r"); wall_c+=("$w"); calls_c=$(calls)
    curl -s -X POST "${endpoint}_sim/reset" >/dev/null 2>&1 || true
    read -r r w < <(measure); rss_u+=("$r"); wall_u+=("$w"); calls_u=$(calls)
    curl -s -X POST "${endpoint}_sim/reset" >/dev/null 2>&1 || true
    read -r r w < <(measure --force); rss_f+=("$r"); wall_f+=("$w"); calls_f=$(calls)
  done
  printf '| %s | changed (all updated) | %s | %s | %s |\n' "$n" "${calls_c:-?}" \
    "$(printf '%s\n' "${rss_c[@]}" | median)" "$(printf '%s\n' "${wall_c[@]}" | median | ms)"
  printf '| %s | unchanged (state file) | %s | %s | %s |\n' "$n" "${calls_u:-?}" \
    "$(printf '%s\n' "${rss_u[@]}" | median)" "$(printf '%s\n' "${wall_u[@]}" | median | ms)"
  printf '| %s | unchanged, --force | %s | %s | %s |\n' "$n" "${calls_f:-?}" \
    "$(printf '%s\n' "${rss_f[@]}" | median)" "$(printf '%s\n' "${wall_f[@]}" | median | ms)"
done
echo "(median of $runs runs each; $(uname -m), $(nproc) cores; binary $(stat -c %s "$bin") bytes)"
