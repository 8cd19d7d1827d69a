#!/usr/bin/env bash
# The paper's tables and a model to ship on a 2-core CPU: the training defaults at
# 48x48, 8 epochs, 5 folds, each model's folds split over two single-thread processes.
#
#   benchmarks/paper_cpu.sh DATA OUT        # DATA from `leukoscope simulate dataset DATA --out-px 48`
#
# OUT/ship: hs_mm_mimo cross-validation + final fit (the model to ship: OUT/ship/model.pt);
# OUT/paper/single_*: Table 1 (one single per light); OUT/paper/mm_mimo. Prints the accuracy table
# with the ensemble (benchmarks/paper_from_runs.py). About 1.4 h on an otherwise idle 2-core
# machine. The MAC columns: copy OUT/ship's fold_* and run.json to OUT/paper/hs_mm_mimo, then
# `leukoscope experiment paper DATA --out OUT/paper` reuses every finished fold.
set -euo pipefail
DATA=${1:?dataset folder}; OUT=${2:?output folder}
LK=${LK:-leukoscope}
C="--epochs 8 --input-size 48 --threads 1"
$LK train "$DATA" $C --part 0 --part 1 --part 2 --out "$OUT/ship" &
$LK train "$DATA" $C --part 3 --part 4 --part final --out "$OUT/ship" &
wait
$LK train "$DATA" $C --out "$OUT/ship"
ALL="--part 0 --part 1 --part 2 --part 3 --part 4"
( for m in color1 color2; do
    $LK train "$DATA" --model single --modalities $m $C --no-final $ALL --out "$OUT/paper/single_$m"
  done ) &
( for m in color3 fluorescence; do
    $LK train "$DATA" --model single --modalities $m $C --no-final $ALL --out "$OUT/paper/single_$m"
  done ) &
wait
$LK train "$DATA" --model mm_mimo $C --no-final --part 0 --part 1 --part 2 --out "$OUT/paper/mm_mimo" &
$LK train "$DATA" --model mm_mimo $C --no-final --part 3 --part 4 --out "$OUT/paper/mm_mimo" &
wait
S="$OUT/paper/single"
${PY:-python} "$(dirname "$0")/paper_from_runs.py" "$DATA" \
  color1="${S}_color1" color2="${S}_color2" color3="${S}_color3" fluorescence="${S}_fluorescence" \
  --ensemble color1,color2,color3,fluorescence mm_mimo="$OUT/paper/mm_mimo" hs_mm_mimo="$OUT/ship"
