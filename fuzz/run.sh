#!/usr/bin/env bash
# Fuzz every reader for a set number of executions, one target at a time.
#
#   fuzz/run.sh [RUNS] [TARGET...]
#
# RUNS defaults to 1000000; the targets default to all of them. Needs a nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). Inputs are at most 4096 bytes, the memory limit is
# 2 GiB and one input may take 10 s; the readers themselves are limited to 64 MiB
# (fuzz_targets/common.rs), so a declared size above that must be refused, not allocated.
# SANITIZER (default none: panics, aborts, timeouts and memory are what is looked for; the
# readers are safe Rust) may be set to address. Crashes land in fuzz/artifacts/<target>/;
# minimise one with `cargo +nightly fuzz tmin <target> <file>` and add it to
# tests/fuzz_regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-1000000}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(npy npy_stream csv mtx pgm image_dir ratings gml edge_list npy_block mtx_block image_stream tiff zarr zarr_codec hdf5_header)
fi
SANITIZER=${SANITIZER:-none}

python3 fuzz/seeds.py
cargo +nightly fuzz build -s "$SANITIZER" -a
mkdir -p fuzz/logs
for target in "${TARGETS[@]}"; do
    echo "== $target: $RUNS runs"
    status=0
    nice -n 10 cargo +nightly fuzz run -s "$SANITIZER" -a "$target" -- \
        -runs="$RUNS" -max_len=4096 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"fuzz/logs/$target.log" 2>&1 || status=$?
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "fuzz/logs/$target.log" || true
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (exit $status); see fuzz/logs/$target.log and fuzz/artifacts/$target/"
    fi
done
