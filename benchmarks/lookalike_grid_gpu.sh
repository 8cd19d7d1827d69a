#!/usr/bin/env bash
# The look-alike calibration on one GPU: a training set per look-alike share (the share of
# white cells drawn partway toward another class, `simulate dataset --lookalikes`), then hs_mm_mimo
# and color1 (the weakest light) on every one, the other three lights on those named in FULL. All
# folds of all sets go through one queue, JOBS processes at a time (benchmarks/paper_gpu.sh).
#
#   benchmarks/lookalike_grid_gpu.sh OUT "0.016 0.021 0.027 0.035" "0.021 0.027"
#
# OUT/data_<share>: the training sets (6,697 cells, seed 0, 48x48); OUT/runs_<share>: their runs.
# Env: JOBS (14), EPOCHS (20), CELLS (6697; fewer for a smoke test), LK (leukoscope).
set -uo pipefail
OUT=${1:?output folder}; GRID=${2:?look-alike shares}; FULL=${3:-}
LK=${LK:-leukoscope}; B=$(dirname "$0")
mkdir -p "$OUT"
for f in $GRID; do
  $LK simulate dataset "$OUT/data_$f" --cells ${CELLS:-6697} --seed 0 --out-px 48 --lookalikes "$f" \
    > "$OUT/gen_$f.log" 2>&1 &
done
wait
{
  for f in $GRID; do LIST=1 "$B/paper_gpu.sh" "$OUT/data_$f" "$OUT/runs_$f" hs_mm_mimo; done
  for f in $GRID; do LIST=1 "$B/paper_gpu.sh" "$OUT/data_$f" "$OUT/runs_$f" single:color1; done
  for f in $FULL; do
    LIST=1 "$B/paper_gpu.sh" "$OUT/data_$f" "$OUT/runs_$f" single:color2 single:color3 \
      single:fluorescence
  done
} > "$OUT/jobs.txt"
xargs -P "${JOBS:-14}" -I{} sh -c '{}' < "$OUT/jobs.txt"
