#!/usr/bin/env bash
# Fuzzes weir's protocol surface with cargo-fuzz (libFuzzer):
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# Targets (fuzz/fuzz_targets/, shared checks in fuzz/src/lib.rs):
#   request_frame  a request frame as the connection reader handles it: size
#                  check, header prefix, api key, supported version, header
#                  and body decode; Produce records validated as the Produce
#                  handler and the log do before appending
#   record_batch   record-batch parsing and validation (header, lengths,
#                  CRC32C, magic, records, scanning, the append-time patches)
#
# Each target runs for SECONDS_PER_TARGET, starting from its committed seed
# corpus (fuzz/corpus/<target>/, read only). New corpus entries go to a
# scratch directory (fuzz/target/fuzz-sh/, git-ignored), crashing inputs to
# fuzz/artifacts/<target>/ (git-ignored): the work tree stays clean. Exits
# non-zero if any target crashed, after printing each crashing input's path.
#
# Toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
# sanitizer-coverage options). RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them; the AddressSanitizer runtime ships with stable's standard
# library. Builds are optimized, with debug assertions and overflow checks.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]   (a positive integer, default 60)" >&2
    exit 2
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# libFuzzer is C++, built by libfuzzer-sys's build script.
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq g++ >/dev/null
    else
        echo "a C++ compiler is needed to build libFuzzer (e.g. apt-get install g++)" >&2
        exit 1
    fi
fi
export RUSTC_BOOTSTRAP=1
# Panics keep their backtraces (RUST_BACKTRACE), but anyhow errors, which
# kafka-protocol returns for every undecodable input, do not capture one:
# with RUST_BACKTRACE=1 in the environment that would halve the exec rate.
export RUST_LIB_BACKTRACE=0
# No AddressSanitizer quarantine: kafka-protocol reserves arrays as large as
# the count a frame claims (hundreds of MB, untouched), and recycling those
# through the quarantine made request_frame 4x slower. Heap overflows are
# still detected. Set ASAN_OPTIONS to choose otherwise.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=0}"

cargo fuzz build
targets=$(cargo fuzz list)

scratch=fuzz/target/fuzz-sh
rm -rf "$scratch"
mkdir -p "$scratch"
failed=()
for target in $targets; do
    mkdir -p "$scratch/corpus/$target"
    log="$scratch/$target.log"
    echo "== $target: ${seconds} s (log: $log)"
    # libFuzzer writes new inputs to the first corpus directory only.
    # -timeout: one input taking this long is a hang, reported like a crash.
    status=0
    cargo fuzz run "$target" "$scratch/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
        sed "s/^/   $target /" || true
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "!! $target FAILED (exit $status); last lines of $log:" >&2
        tail -n 60 "$log" >&2
        # cargo-fuzz prints "Failing input:" then the path; libFuzzer "Test unit written to".
        grep -E 'Test unit written to|^\s+fuzz/artifacts/' "$log" | sed 's/^/!! crashing input: /' >&2 || true
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: no crash in ${seconds} s per target ($(echo $targets))"
