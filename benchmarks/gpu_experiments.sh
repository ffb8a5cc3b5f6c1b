#!/usr/bin/env bash
# One-shot GPU job for the lecture's training experiments (docs/experiments.md), within a hard wall-time limit.
#
#   OUT=/path/to/out DATA=/tmp/cifar10-jpeg bash benchmarks/gpu_experiments.sh
#
# Runs `cnnarch experiment degradation` (plain-20/56 against ResNet-20/56, He et al.'s schedule compressed
# to 3,200 iterations of batch 128 on all 50k images, lr /10 at 1,600 and 2,400), then `dropout` and,
# with what time is left, `ensemble` (and `googlenet-aux` when GAUX_LIMIT gives it time). Each gets a --time-limit inside the experiment (training stops
# between epochs and the report is written from what was reached) and an outer `timeout`; a report the
# experiment could not write is written afterwards with --report-only. Every experiment's folder
# (report, figures, metrics, run logs; no checkpoints) is packed into $OUT/NAME.tar.gz, whatever happened.
#
# The whole script ends within about $TOTAL seconds (default 270; at worst ~15 s more). CPU rehearsal with a tiny subset:
#   TOTAL=150 DEG_BUDGET=0.01 DROP_BUDGET=0.05 ENS_BUDGET=0.01 EXTRA="--device cpu --limit-train 64 \
#     --limit-val 32" OUT=/tmp/rehearsal DATA=../shared/data/cifar10-jpeg bash benchmarks/gpu_experiments.sh
set -u
OUT=${OUT:-/tmp/gpu_experiments}
DATA=${DATA:-/tmp/cifar10-jpeg}
TOTAL=${TOTAL:-270}
DEG_BUDGET=${DEG_BUDGET:-5} DEG_LIMIT=${DEG_LIMIT:-150}
DROP_BUDGET=${DROP_BUDGET:-2} DROP_LIMIT=${DROP_LIMIT:-45}
ENS_BUDGET=${ENS_BUDGET:-2} ENS_LIMIT=${ENS_LIMIT:-60}
# googlenet-aux only when given time: e.g. TOTAL=900 GAUX_LIMIT=600 (budget 10: all 50k images, 4 epochs)
GAUX_BUDGET=${GAUX_BUDGET:-10} GAUX_LIMIT=${GAUX_LIMIT:-0}
RESERVE=${RESERVE:-45}  # seconds kept back per experiment for start-up, its report and packing
EXTRA=${EXTRA:-}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CNNARCH_CACHE=${CNNARCH_CACHE:-/tmp/cnnarch-cache}
py=${PYTHON:-python3}
start=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - start))); }
work=$(mktemp -d /tmp/cnnarch-experiments.XXXXXX)
mkdir -p "$OUT"
log=$OUT/gpu_experiments.log
exec > >(tee -a "$log") 2>&1

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $(hostname), TOTAL=$TOTAL s, data $DATA"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
timeout 60 $py -c "
import sys, torch, torchvision, matplotlib
print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__,
      'matplotlib', matplotlib.__version__, 'cuda', torch.cuda.is_available())
"

one() {  # NAME BUDGET LIMIT
  local name=$1 budget=$2 limit=$3 dir=$work/$1 l cap rc
  l=$(left)
  cap=$((limit < l - RESERVE ? limit : l - RESERVE))
  if ((cap < 15)); then
    echo "== $name skipped: a time limit of $cap s is too short ($l s left)"
    return
  fi
  echo "== $name --budget $budget --time-limit $cap ($l s left)"
  mkdir -p "$dir"
  # shellcheck disable=SC2086  # EXTRA is a list of options
  timeout -k 5 $((cap + 25)) $py -m cnnarch.cli experiment "$name" --data "$DATA" --output "$dir/report" \
    --budget "$budget" --time-limit "$cap" $EXTRA >"$dir/experiment.log" 2>&1
  rc=$?
  tail -n 25 "$dir/experiment.log"
  echo "== $name exit status $rc after $(($(date +%s) - start)) s"
  if [ ! -s "$dir/report/README.md" ] && [ -f "$dir/report/state.json" ]; then
    l=$(left)
    echo "== $name: writing its report from what it reached (--report-only)"
    # shellcheck disable=SC2086
    timeout -k 3 $((l > 40 ? 30 : (l > 12 ? l - 10 : 2))) $py -m cnnarch.cli experiment "$name" --data "$DATA" \
      --output "$dir/report" --budget "$budget" --resume --report-only $EXTRA >>"$dir/experiment.log" 2>&1
    echo "== report-only exit status $?"
  fi
  tar -czf "$OUT/$name.tar.gz" -C "$work" --exclude='*.pt' --exclude='*.tmp' "$name"
  ls -l "$OUT/$name.tar.gz"
}

one degradation "$DEG_BUDGET" "$DEG_LIMIT"
one dropout "$DROP_BUDGET" "$DROP_LIMIT"
one ensemble "$ENS_BUDGET" "$ENS_LIMIT"
one googlenet-aux "$GAUX_BUDGET" "$GAUX_LIMIT"
echo "== done in $(($(date +%s) - start)) s; files in $OUT:"
ls -l "$OUT"
