#!/usr/bin/env bash
# Regenerates manifests/components/mcpserver-crd/ from the Rust types (api/src/mcpserver.rs). The golden test fails until the
# regenerated file is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_CRD=1 cargo test -q -p muster-exchange-api --test crd_golden
echo "wrote manifests/components/mcpserver-crd/muster.giantswarm.io_mcpservers.yaml"
