#!/usr/bin/env bash
# Streaming a movie larger than the memory the process may take into `nmf fit --online`.
#
# Writes the synthetic calcium-imaging movie of examples/movie.rs as a 16-bit BigTIFF
# (SIDE x SIDE frames, FRAMES of them: 4.3 GB by default) and the same frames as a uint16 .npy
# (frames x pixels, read with --samples-as-rows), then runs one epoch of `nmf fit --online`
# from each under an address-space limit (prlimit --as, RLIMIT_AS: every allocation past it
# fails) of CAP_MIB, smaller than either file, with and without frame preprocessing
# (--baseline p20 --downsample 2: two extra passes over the file). Each file's pages are
# dropped from the page cache (posix_fadvise DONTNEED) before each run, so the first pass reads
# the disk; later passes may find the file in the page cache, which is the kernel's memory,
# not the process's. Reports wall time, frames/s and MB/s of file read (all passes), and the
# peak resident memory (/usr/bin/time -v). For reference, the time Python's tifffile takes to
# read every page of the same file (a throwaway venv, VENV, with tifffile installed: not a
# dependency of the project).
#
#   benches/movie_stream.sh                       # 32768 frames of 256x256, cap 1.5 GiB
#   FRAMES=2048 benches/movie_stream.sh           # a quick check
#
# The files are deleted at the end (KEEP=1 keeps them). Not run by CI.
set -euo pipefail

SIDE=${SIDE:-256}
FRAMES=${FRAMES:-32768}
CAP_MIB=${CAP_MIB:-1536}
RANK=${RANK:-13}
BATCH=${BATCH:-512}
DIR=${DIR:-/tmp/nmf-movie-bench}
VENV=${VENV:-/tmp/venv-tifffile}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}

if [[ ! -x $BIN/nmf || ! -x $BIN/examples/movie ]]; then
    (cd "$ROOT" && cargo build --release --bin nmf --example movie)
fi
mkdir -p "$DIR"
cleanup() { [[ ${KEEP:-0} == 1 ]] || rm -rf "$DIR"; }
trap cleanup EXIT

drop_cache() {
    python3 - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
EOF
}

echo "== machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "== writing $FRAMES frames of ${SIDE}x${SIDE} (16-bit BigTIFF)"
start=$(date +%s.%N)
"$BIN/examples/movie" --write-only --bigtiff --width "$SIDE" --height "$SIDE" \
    --frames "$FRAMES" --out "$DIR" >/dev/null
tif=$DIR/movie.tif
tif_bytes=$(stat -c %s "$tif")
echo "   $(awk -v b="$tif_bytes" 'BEGIN {printf "%.2f GB", b / 1e9}') in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f s", e - s}')"

npy=$DIR/movie.npy
if [[ -x $VENV/bin/python ]]; then
    echo "== tifffile: every page of the TIFF read (cold), and the same frames written as .npy"
    drop_cache "$tif"
    "$VENV/bin/python" - "$tif" "$npy" <<'EOF'
import sys, time
import numpy as np, tifffile
tif, npy = sys.argv[1], sys.argv[2]
t = time.perf_counter()
with tifffile.TiffFile(tif) as f:
    n = 0
    for page in f.pages:
        page.asarray()
        n += 1
s = time.perf_counter() - t
size = __import__("os").path.getsize(tif)
print(f"   tifffile {tifffile.__version__}: {n} pages in {s:.1f} s: {n / s:.0f} frames/s, {size / s / 1e6:.0f} MB/s")
with tifffile.TiffFile(tif) as f:
    h, w = f.pages[0].shape
    out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint16, shape=(len(f.pages), h * w))
    for j, page in enumerate(f.pages):
        out[j] = page.asarray().reshape(-1)
    out.flush()
    del out
EOF
else
    echo "== no $VENV/bin/python with tifffile: the .npy and the tifffile reference are skipped"
fi

# run NAME FILE FRAMES-EXTRA-ARGS...
run() {
    local name=$1 file=$2
    shift 2
    local out=$DIR/fit-$name
    drop_cache "$file"
    local bytes
    bytes=$(stat -c %s "$file")
    /usr/bin/time -v -o "$DIR/time.txt" \
        prlimit --as=$((CAP_MIB << 20)) -- \
        "$BIN/nmf" fit --input "$file" --rank "$RANK" --online --epochs 1 --no-h \
        --batch-size "$BATCH" --backend cpu --quiet --output-dir "$out" "$@"
    local wall rss passes fit_s
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$DIR/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$DIR/time.txt")
    passes=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); f=s.get('frame_preprocessing') or {}; print(1 + sum(st.get('passes', 0) for st in f.get('steps', [])))" "$out/summary.json")
    fit_s=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$out/summary.json")
    printf "   %-28s %6.1f s wall, %3d pass(es): %6.0f frames/s, %5.0f MB/s of file; fit epoch %6.1f s (%5.0f frames/s); peak RSS %5d MiB\n" \
        "$name" "$wall" "$passes" \
        "$(awk -v f="$FRAMES" -v p="$passes" -v w="$wall" 'BEGIN {print f * p / w}')" \
        "$(awk -v b="$bytes" -v p="$passes" -v w="$wall" 'BEGIN {print b * p / w / 1e6}')" \
        "$fit_s" "$(awk -v f="$FRAMES" -v s="$fit_s" 'BEGIN {print f / s}')" "$rss"
}

echo "== nmf fit --online, one epoch, rank $RANK, batches of $BATCH, under prlimit --as=${CAP_MIB}MiB"
run "tiff" "$tif"
run "tiff --baseline p20 --ds 2" "$tif" --baseline p20 --downsample 2
if [[ -f $npy ]]; then
    run "npy" "$npy" --samples-as-rows
    run "npy --baseline p20 --ds 2" "$npy" --samples-as-rows --frame-shape "${SIDE}x${SIDE}" \
        --baseline p20 --downsample 2
fi
