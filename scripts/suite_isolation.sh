#!/usr/bin/env bash
# The suite shares nothing with what runs beside it:
#   scripts/suite_isolation.sh pair       two copies of the suite at once, beside a `leukoscope run`
#                                         that holds the production live port (tcp 5554) throughout
#   scripts/suite_isolation.sh load [N]   the suite N times in a row (default 5) beside two
#                                         `leukoscope train` processes (both cores busy)
# Each suite's log is kept under the work folder printed at the start; exit 0 when every suite passed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-pair}"
WORK="$(mktemp -d /tmp/suite-isolation.XXXXXX)"
BIN="$PWD/.venv/bin"
echo "work folder: $WORK"
BESIDE=()
stop_beside() { for pid in "${BESIDE[@]}"; do kill -- "-$pid" 2>/dev/null || true; done; }
trap stop_beside EXIT

suite() {  # suite LOG: the whole pytest suite, its exit status returned
    local started=$SECONDS
    if "$BIN/pytest" -q -p no:cacheprovider >"$1" 2>&1; then rc=0; else rc=$?; fi
    echo "$(basename "$1"): exit $rc in $((SECONDS - started)) s: $(tail -n 1 "$1")"
    return "$rc"
}

case "$MODE" in
pair)
    # a live run publishing on the production endpoint, restarted whenever it finishes its fields
    setsid bash -c 'cd "$1" && while true; do
        "$2/leukoscope" run --simulate --sample holder --cells 0 --max-fields 60 --replace \
            --out "$1/acq" --db "$1/holder.sqlite" >>"$1/holder.log" 2>&1 || true
    done' holder "$WORK" "$BIN" &
    BESIDE+=($!)
    for _ in $(seq 120); do
        if "$BIN/python" - <<'PY'
import socket, sys
s = socket.socket()
sys.exit(0 if s.connect_ex(("127.0.0.1", 5554)) == 0 else 1)
PY
        then break; fi
        sleep 1
    done
    echo "leukoscope run holds tcp://127.0.0.1:5554"
    suite "$WORK/suite-a.log" & A=$!
    suite "$WORK/suite-b.log" & B=$!
    failed=0
    wait "$A" || failed=1
    wait "$B" || failed=1
    echo "leukoscope runs finished beside the suites: $(grep -c '^fields ' "$WORK/holder.log" || true) (log: $WORK/holder.log)"
    exit "$failed"
    ;;
load)
    N="${2:-5}"
    "$BIN/leukoscope" simulate dataset "$WORK/cells" --cells 1500 --out-px 48 --seed 1 >/dev/null
    for name in a b; do
        setsid "$BIN/leukoscope" train "$WORK/cells" --epochs 10000 --folds 2 \
            --out "$WORK/train-$name" >"$WORK/train-$name.log" 2>&1 &
        BESIDE+=($!)
    done
    for i in $(seq "$N"); do
        suite "$WORK/suite-$i.log" || exit 1
    done
    ;;
*)
    echo "usage: $0 pair | load [N]" >&2
    exit 2
    ;;
esac
