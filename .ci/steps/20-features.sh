#!/usr/bin/env bash
# The feature sets we ship besides the default: HTTP-only (no TLS) and TLS
# without embedded roots (the OpenWrt package, which depends on ca-bundle).
set -euo pipefail
cd "$(dirname "$0")/../.."
for features in "--no-default-features" "--no-default-features --features tls"; do
  echo "-- cargo clippy $features"
  # shellcheck disable=SC2086 # word splitting of the feature flags is intended
  cargo clippy -q $features --all-targets -- -D warnings
done
echo "-- cargo test --no-default-features (HTTP-only build)"
cargo test -q --no-default-features
echo "-- cargo test --no-default-features --features tls --test tls (package build: no embedded roots)"
cargo test -q --no-default-features --features tls --test tls
