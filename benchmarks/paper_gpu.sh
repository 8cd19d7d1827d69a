#!/usr/bin/env bash
# Table 1's rows on one GPU: every fold of every row is a process of its own, JOBS of them
# at a time on the one card (the 48x48 networks leave it mostly idle; one process cannot fill it).
# Same recipe as benchmarks/paper_epochs_cpu.sh: 48x48, the training defaults, 5 folds.
#
#   benchmarks/paper_gpu.sh DATA OUT [ROW...]   # ROW: hs_mm_mimo (folds + the final fit to ship),
#                                               # mm_mimo, single:<light>; default: hs_mm_mimo and
#                                               # the four single lights
#   LIST=1 benchmarks/paper_gpu.sh ...          # print the fold commands only (to queue several runs)
#
# OUT/hs_mm_mimo, OUT/mm_mimo, OUT/single_<light>: the folds (and OUT/hs_mm_mimo/final); OUT/logs: one
# log per fold. Prints the table (benchmarks/paper_from_runs.py) when every single light was run.
# Env: EPOCHS (20), JOBS (14), DEVICE (cuda), LK (leukoscope), PY (python).
set -euo pipefail
DATA=${1:?dataset folder}; OUT=${2:?output folder}; shift 2
ROWS=${*:-hs_mm_mimo single:color1 single:color2 single:color3 single:fluorescence}
LK=${LK:-leukoscope}
C="--epochs ${EPOCHS:-20} --input-size 48 --threads 1 --device ${DEVICE:-cuda}"
commands() {
  for row in $ROWS; do
    case $row in
      hs_mm_mimo) parts="0 1 2 3 4 final"; args="--model hs_mm_mimo"; run=hs_mm_mimo ;;
      mm_mimo) parts="0 1 2 3 4"; args="--model mm_mimo --no-final"; run=mm_mimo ;;
      single:*) parts="0 1 2 3 4"; run="single_${row#single:}"
        args="--model single --modalities ${row#single:} --no-final" ;;
      *) echo "unknown row: $row" >&2; exit 2 ;;
    esac
    for k in $parts; do
      echo "$LK train $DATA $args $C --part $k --out $OUT/$run > $OUT/logs/${run}_$k.log 2>&1"
    done
  done
}
mkdir -p "$OUT/logs"
if [[ -n ${LIST:-} ]]; then commands; exit 0; fi
commands | xargs -P "${JOBS:-14}" -I{} sh -c '{}' || echo "some folds failed: see $OUT/logs" >&2
S="$OUT/single"
if [[ -d ${S}_color1 && -d ${S}_color2 && -d ${S}_color3 && -d ${S}_fluorescence ]]; then
  ${PY:-python} "$(dirname "$0")/paper_from_runs.py" "$DATA" \
    color1="${S}_color1" color2="${S}_color2" color3="${S}_color3" fluorescence="${S}_fluorescence" \
    --ensemble color1,color2,color3,fluorescence hs_mm_mimo="$OUT/hs_mm_mimo"
fi
