#!/usr/bin/env bash
# End-to-end tests on a kind cluster (e2e/kind-e2e.sh). They need `kind`, a running Docker engine, `kubectl`
# and `openssl`; where any is missing the script says which and exits 0 (skipped), so CI machines without a
# container engine pass.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "e2e: SKIPPED: $*"; exit 0; }
command -v kind >/dev/null 2>&1 || skip "kind is not installed (https://kind.sigs.k8s.io)"
command -v docker >/dev/null 2>&1 || skip "docker is not installed"
docker info >/dev/null 2>&1 || skip "no Docker engine is running"
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed"
command -v openssl >/dev/null 2>&1 || skip "openssl is not installed (it makes the e2e Dex's certificates)"

exec bash e2e/kind-e2e.sh "$@"
