#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for MINUTES minutes each (default 10), one after the other, and
# prints per target: runs, execs/s, coverage, corpus and crashes. Exits non-zero when any target
# crashed (the input is in fuzz/artifacts/<target>/; reproduce with
# `cargo +nightly fuzz run -s none -a <target> <file>`).
#
#   hack/fuzz.sh [MINUTES]
#   FUZZ_SECONDS=20 FUZZ_MAX_RUNS=200000 FUZZ_DEV=1 hack/fuzz.sh   # smoke run (CI): seconds and runs
#                                                                  # bounded, unoptimised build (builds faster)
#   FUZZ_TARGETS="kubeconfig dex_response" hack/fuzz.sh 1
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Builds without a
# sanitizer (the crates forbid unsafe code) and with debug assertions, so overflow is a crash too.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-10}"
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || (( minutes < 1 )); then
    echo "usage: hack/fuzz.sh [MINUTES]  (whole minutes >= 1; FUZZ_SECONDS overrides)" >&2
    exit 2
fi
seconds="${FUZZ_SECONDS:-$(( minutes * 60 ))}"
max_runs="${FUZZ_MAX_RUNS:--1}"
read -r -a targets <<< "${FUZZ_TARGETS:-admission_pods sidecar_inbound sidecar_http1 kubeconfig dex_response mcpserver_documents}"
flags=(-s none -a)
# An unoptimised build compiles in a fraction of the time; enough for a smoke run, slow for a campaign.
if [ "${FUZZ_DEV:-0}" = 1 ]; then flags=(-s none -D -a); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "hack/fuzz.sh: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
    exit 3
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "hack/fuzz.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
    exit 3
fi

bash hack/fuzz-seed.sh >/dev/null
mkdir -p fuzz/logs
echo "==> building the fuzz targets (cargo +nightly fuzz build ${flags[*]})"
cargo +nightly fuzz build "${flags[@]}" >fuzz/logs/build.log 2>&1 || {
    tail -n 40 fuzz/logs/build.log >&2
    echo "hack/fuzz.sh: the fuzz targets do not build; full log in fuzz/logs/build.log" >&2
    exit 1
}

# Reads libFuzzer's final statistics and last status line from a log.
final_stat() { grep -o "stat::$1: *[0-9]*" "$2" | tail -n 1 | grep -o '[0-9]*$' || echo "?"; }
status_field() { grep -E '^#[0-9]+' "$2" | tail -n 1 | grep -o "$1: [0-9]*" | grep -o '[0-9]*$' || echo "?"; }

crashed=()
summary=()
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    echo "==> $target: ${seconds}s"
    started=$(date +%s)
    status=0
    cargo +nightly fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -runs="$max_runs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - started ))
    runs=$(final_stat number_of_executed_units "$log")
    rate=$(final_stat average_exec_per_sec "$log")
    cov=$(status_field cov "$log")
    features=$(status_field ft "$log")
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    if (( status != 0 )); then
        crashes=1
        crashed+=("$target")
        artifact=$(grep -o 'fuzz/artifacts/[^ ]*' "$log" | tail -n 1 || true)
        grep -m 5 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /' || true
        echo "    crash input: ${artifact:-see $log}"
    else
        crashes=0
    fi
    line=$(printf '%-20s %6ss  runs %-10s  execs/s %-7s  cov %-6s  ft %-6s  corpus %-5s  crashes %s' \
        "$target" "$elapsed" "$runs" "$rate" "$cov" "$features" "$corpus" "$crashes")
    echo "$line"
    summary+=("$line")
done

echo "==> summary"
printf '%s\n' "${summary[@]}"
if (( ${#crashed[@]} > 0 )); then
    echo "hack/fuzz.sh: crashes in: ${crashed[*]} (logs in fuzz/logs/, inputs in fuzz/artifacts/)" >&2
    exit 1
fi
