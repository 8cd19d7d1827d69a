#!/usr/bin/env bash
# The four single-light networks of Table 1 at the `leukoscope train` default of 20 epochs (issue 18),
# 48x48, the recipe of issue 14, 5 folds, on a 2-core CPU: two single-thread queues side by side.
#
#   benchmarks/singles_cpu.sh DATA OUT [SHIP]   # DATA from `leukoscope simulate dataset DATA --out-px 48`
#
# OUT/single_<light>: the cross-validated folds (no final fit). Prints the table with the ensemble of
# the four and, given SHIP (a finished hs_mm_mimo run, e.g. paper_cpu.sh's OUT/ship), hs_mm_mimo beside
# them (benchmarks/paper_from_runs.py). About 85 min on an otherwise idle 2-core machine.
set -euo pipefail
DATA=${1:?dataset folder}; OUT=${2:?output folder}; SHIP=${3:-}
LK=${LK:-leukoscope}
C="--epochs ${EPOCHS:-20} --input-size 48 --threads 1 --no-final"
ALL="--part 0 --part 1 --part 2 --part 3 --part 4"
queue() {
  for m in "$@"; do
    $LK train "$DATA" --model single --modalities "$m" $C $ALL --out "$OUT/single_$m"
  done
}
queue color1 color3 &
queue color2 fluorescence &
wait
S="$OUT/single"
${PY:-python} "$(dirname "$0")/paper_from_runs.py" "$DATA" \
  color1="${S}_color1" color2="${S}_color2" color3="${S}_color3" fluorescence="${S}_fluorescence" \
  --ensemble color1,color2,color3,fluorescence ${SHIP:+hs_mm_mimo="$SHIP"}
