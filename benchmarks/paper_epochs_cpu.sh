#!/usr/bin/env bash
# Table 1's four single lights and hs_mm_mimo at one number of epochs (default 20, `leukoscope train`'s
# default; benchmarks/paper_cpu.sh trains 8), 48x48, the training defaults, 5 folds, no
# final fit, on a 2-core CPU: two single-thread queues side by side. 
#
#   benchmarks/paper_epochs_cpu.sh DATA OUT   # DATA from `leukoscope simulate dataset DATA --out-px 48`
#   EPOCHS=12 benchmarks/paper_epochs_cpu.sh DATA OUT
#
# OUT/single_<light>, OUT/hs_mm_mimo: the cross-validated folds. Prints the table with the ensemble of
# the four singles (benchmarks/paper_from_runs.py). About 2 h at 20 epochs on an otherwise idle
# 2-core machine (a single-light fold 435-568 s, an hs_mm_mimo fold 750-850 s, two at a time).
set -euo pipefail
DATA=${1:?dataset folder}; OUT=${2:?output folder}
LK=${LK:-leukoscope}
C="--epochs ${EPOCHS:-20} --input-size 48 --threads 1 --no-final"
queue() {
  for m in "$@"; do
    $LK train "$DATA" --model single --modalities "$m" $C --part 0 --part 1 --part 2 --part 3 \
      --part 4 --out "$OUT/single_$m"
  done
}
queue color1 color3 &
queue color2 fluorescence &
wait
$LK train "$DATA" $C --part 0 --part 1 --part 2 --out "$OUT/hs_mm_mimo" &
$LK train "$DATA" $C --part 3 --part 4 --out "$OUT/hs_mm_mimo" &
wait
S="$OUT/single"
${PY:-python} "$(dirname "$0")/paper_from_runs.py" "$DATA" \
  color1="${S}_color1" color2="${S}_color2" color3="${S}_color3" fluorescence="${S}_fluorescence" \
  --ensemble color1,color2,color3,fluorescence hs_mm_mimo="$OUT/hs_mm_mimo"
