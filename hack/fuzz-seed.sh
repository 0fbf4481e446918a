#!/usr/bin/env bash
# Builds the fuzz corpora under fuzz/corpus/<target>/ from the committed seeds (fuzz/seeds/<target>/)
# and the test fixtures and examples they mirror. Existing corpus files are kept (libFuzzer adds to
# them); run with --clean to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--clean" ]]; then
    rm -rf fuzz/corpus
fi

targets=(admission_pods sidecar_inbound sidecar_http1 kubeconfig dex_response mcpserver_documents)
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    cp fuzz/seeds/"$target"/* "fuzz/corpus/$target/"
done

# AdmissionReviews of pods from the webhook's router tests (not the expected patches).
for review in webhook/tests/fixtures/pod-*.json; do
    [[ "$review" == *.patch.json ]] && continue
    cp "$review" "fuzz/corpus/admission_pods/fixture-$(basename "$review")"
done

# Manifests: the examples, the webhook's catalog and workloads, and its MCPServer reviews.
for manifest in examples/*.yaml webhook/tests/fixtures/*.yaml webhook/tests/fixtures/mcpserver-*.json; do
    cp "$manifest" "fuzz/corpus/mcpserver_documents/fixture-$(basename "$manifest")"
done

for target in "${targets[@]}"; do
    echo "fuzz/corpus/$target: $(find "fuzz/corpus/$target" -type f | wc -l) inputs"
done
