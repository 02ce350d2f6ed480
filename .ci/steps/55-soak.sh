#!/usr/bin/env bash
# CI step: a short memory soak of `aliddns serve` (scripts/soak-serve.sh): 1 M
# requests with a valid token, then 1 M with a wrong one, against the static
# x86_64 musl build that routers' allocator setup matches; fails when VmRSS
# passes 8 MB or grows more than 5 % (or 128 KB, the allocator's granularity,
# when that is more) over the last 2/3 of a phase.
#
# wrk comes from Debian. When the router tools cannot be installed the host
# release build is soaked instead (said loudly); when wrk cannot be installed
# the step prints SKIPPED and exits 0. Bounded: the soak itself is killed after
# 10 minutes (about 1-2 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
step_start=$(date +%s)
elapsed() { echo "$(($(date +%s) - step_start)) s"; }

have wrk || apt_install wrk || true
if ! have wrk; then
	echo "SKIPPED: soak (.ci/steps/55-soak.sh): wrk is not installed and apt-get could not install it"
	exit 0
fi

target=x86_64-unknown-linux-musl
dist="$(pwd)/dist/ci-soak"
rc=0
scripts/build-router.sh --setup || rc=$?
if [ "$rc" = 0 ]; then
	echo "== scripts/build-router.sh $target"
	DIST_DIR="$dist" scripts/build-router.sh "$target"
	bin="$dist/aliddns-$target"
elif [ "$rc" = 75 ]; then
	echo "################################################################"
	echo "NOTE: router tools unavailable: soaking the host release build instead"
	echo "################################################################"
	cargo build --release --quiet -p aliddns --bin aliddns
	bin="${CARGO_TARGET_DIR:-target}/release/aliddns"
else
	echo "soak step: router tool setup failed (exit $rc)" >&2
	exit "$rc"
fi
echo "   built after $(elapsed)"

echo "== scripts/soak-serve.sh --bin $bin --millions 1 --step 250000"
SOAK_TIME_LIMIT=600 scripts/soak-serve.sh --bin "$bin" --millions 1 --step 250000
echo "== soak step done in $(elapsed)"
