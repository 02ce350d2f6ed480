#!/usr/bin/env bash
# Interop with the official Alibaba Cloud Python SDK (from PyPI): random signing
# vectors computed by the SDK are checked against our signer, and the SDK's own
# client is run against the simulator. Prints SKIPPED when PyPI is unreachable.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=$(mktemp -d)/venv
if ! python3 -m venv "$venv" >/dev/null 2>&1 ||
   ! "$venv/bin/pip" install -q aliyun-python-sdk-core aliyun-python-sdk-alidns >/dev/null 2>&1; then
  echo "SKIPPED: SDK interop: cannot install aliyun-python-sdk-core from PyPI"
  exit 0
fi
vectors=$(dirname "$venv")/vectors.json
"$venv/bin/python" scripts/sdk-interop.py vectors "$vectors" 500
ALIDDNS_SDK_VECTORS="$vectors" cargo test -q --bin aliddns official_sdk_vectors -- --exact sign::tests::official_sdk_vectors

cargo build -q -p alidns-sim --bin alidns-sim
out=$(dirname "$venv")/sim.out
target/debug/alidns-sim --listen 127.0.0.1:0 --domain example.com >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.05; done
"$venv/bin/python" scripts/sdk-interop.py client "$(sed -n 's/^listening on //p' "$out")"
