#!/usr/bin/env bash
# One prepared check of nas on a lent GPU (issue 32), at most 8 minutes on an H100/H200-class card:
# six steps, each under its own cap, then a table and one line `PASS | ...` or `FAIL STEPS | ...`
# with the figures. A failed or timed-out step is named on that line; the others still run.
#
#   bash benchmarks/gpu_check.sh                       # on the GPU (CIFAR-10 built from ../shared if absent)
#   bash benchmarks/gpu_check.sh --dry-run             # every step tiny on the CPU (CI runs this)
#   bash benchmarks/gpu_check.sh --out DIR --data-root DIR --device cuda:0 --table CSV
#   CAP_accuracy=360 bash benchmarks/gpu_check.sh --only accuracy   # one step, with a longer cap
#
# Steps (benchmarks/gpu_check.py has the details): throughput, overhead, share, accuracy, search,
# table; each has a cap in seconds (CAPS below; CAP_<step>=S overrides one). Within the 8 minutes
# the accuracy step gets 150 s, so it trains as many of the recipe's epochs as fit in about 105 s
# and fails if that is not all of them; `--only accuracy` with CAP_accuracy=360 gives it 5 minutes.
# The exit status is 0 for PASS, 1 for FAIL. Logs, stores and the table stay under --out.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
DRY=0 OUT="" DATA_ROOT="" DEVICE="cuda" TABLE="" ONLY="" TOTAL_S=480
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT="$2"; shift ;;
        --data-root) DATA_ROOT="$2"; shift ;;
        --device) DEVICE="$2"; shift ;;
        --table) TABLE="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for step in ${ONLY//,/ }; do
    case "$step" in throughput|overhead|share|accuracy|search|table) ;;
        *) echo "gpu_check.sh: --only $step: the steps are throughput,overhead,share,accuracy,search,table" >&2
           exit 2 ;;
    esac
done
PY="${PYTHON:-python}"
OUT="${OUT:-$(mktemp -d -t nas-gpu-check-XXXXXX)}"
mkdir -p "$OUT"
START=$SECONDS

# Caps in seconds, in order; `table` gets what is left of TOTAL_S. The dry run's are loose: CI's
# two shared cores are slow, and its figures are not the point.
STEPS=(throughput overhead share accuracy search table)
if [ "$DRY" = 1 ]; then
    CAPS=(150 90 120 120 150 0); TOTAL_S=900; ARGS=(--dry-run)
else
    CAPS=(75 70 60 150 100 0); ARGS=(--device "$DEVICE")
    if [ -z "$DATA_ROOT" ]; then
        DATA_ROOT="${NAS_TEST_DATA:-$REPO/.nas/test-data}"
        MAKE="$REPO/../shared/data/cifar10/make_batches.py"
        [ -f "$MAKE" ] || MAKE="$REPO/shared/data/cifar10/make_batches.py"
        if [ ! -f "$DATA_ROOT/cifar-10-batches-py/data_batch_5" ] && [ -f "$MAKE" ]; then
            echo "building CIFAR-10 into $DATA_ROOT from $MAKE"
            "$PY" "$MAKE" "$DATA_ROOT" >/dev/null || echo "could not build CIFAR-10 (steps will say so)"
        fi
    fi
    ARGS+=(--data-root "$DATA_ROOT")
fi
[ -n "$TABLE" ] && ARGS+=(--table "$TABLE")
echo "nas GPU check: $([ "$DRY" = 1 ] && echo 'dry run on the CPU' || echo "device $DEVICE"), logs in $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

RAN=()
for i in "${!STEPS[@]}"; do
    step="${STEPS[$i]}" cap="${CAPS[$i]}" override="CAP_${STEPS[$i]}"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$step,"* ]]; then continue; fi
    RAN+=("$step")
    if [ "$cap" = 0 ]; then cap=$(( TOTAL_S - (SECONDS - START) - 5 )); fi
    cap="${!override:-$cap}"
    if [ "$cap" -lt 15 ]; then cap=15; fi
    began=$SECONDS
    timeout -k 10 "$cap" "$PY" "$HERE/gpu_check.py" "$step" --out "$OUT" --time-limit-s "$cap" \
        "${ARGS[@]}" >"$OUT/$step.log" 2>&1
    echo $? >"$OUT/$step.rc"
    echo "$(( SECONDS - began )) $cap" >"$OUT/$step.time"
    echo "  $step: $(( SECONDS - began ))s (cap ${cap}s), exit $(cat "$OUT/$step.rc")"
done
echo "total: $(( SECONDS - START ))s"
"$PY" "$HERE/gpu_check.py" report --out "$OUT" --steps "$(IFS=,; echo "${RAN[*]}")"
