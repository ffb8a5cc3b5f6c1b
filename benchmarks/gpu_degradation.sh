#!/usr/bin/env bash
# He et al.'s own CIFAR-10 schedule for the degradation experiment on a GPU, resumable across sessions:
#
#   OUT=/path/to/out DATA=/tmp/cifar10-jpeg TOTAL=3600 bash benchmarks/gpu_degradation.sh
#
# Runs `cnnarch experiment degradation --budget paper`: plain-20/32/44/56 and ResNet-20/32/44/56/110 (seeds
# 0 and 1 at depths 20 and 56), each 64k iterations of batch 128 on 45k training images (5k held out),
# lr 0.1 divided by 10 at 32k and 48k, weight decay 1e-4 (sec. 4.2; the resnet-cifar recipe unchanged),
# test error after every epoch. The runs advance in rounds of one epoch each, so a session stopped by its
# time limit ($TOTAL seconds, between epochs) leaves them all at the same point; the next session with the
# same $OUT continues them exactly (--resume). The report (README.md beside the paper's Table 6, the Fig. 6
# plot, metrics) is packed into $OUT/degradation-paper.tar.gz without checkpoints; unpack it into
# docs/experiments/. The checkpoints stay in $OUT/degradation-paper/runs for the next session.
#
# CPU rehearsal with a tiny subset:
#   TOTAL=90 EXTRA="--device cpu --limit-train 64 --limit-val 32" OUT=/tmp/rehearsal \
#     DATA=../shared/data/cifar10-jpeg bash benchmarks/gpu_degradation.sh
set -u
OUT=${OUT:-/tmp/gpu_degradation}
DATA=${DATA:-/tmp/cifar10-jpeg}
TOTAL=${TOTAL:-3600}
RESERVE=${RESERVE:-60}  # seconds kept back for start-up, the report and packing
EXTRA=${EXTRA:-}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CNNARCH_CACHE=${CNNARCH_CACHE:-/tmp/cnnarch-cache}
py=${PYTHON:-python3}
dir=$OUT/degradation-paper
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_degradation.log") 2>&1

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $(hostname), TOTAL=$TOTAL s, data $DATA"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
resume=()
[ -f "$dir/state.json" ] && resume=(--resume)
limit=$((TOTAL - RESERVE))
# shellcheck disable=SC2086  # EXTRA is a list of options
timeout -k 10 $((limit + RESERVE / 2)) $py -m cnnarch.cli experiment degradation --budget paper --data "$DATA" \
  --output "$dir" --time-limit "$limit" "${resume[@]}" $EXTRA
echo "== exit status $? after $SECONDS s"
if [ -f "$dir/state.json" ]; then  # a report from what was reached, also after a kill
  # shellcheck disable=SC2086
  timeout -k 5 $((RESERVE / 3 + 5)) $py -m cnnarch.cli experiment degradation --budget paper --data "$DATA" \
    --output "$dir" --resume --report-only $EXTRA >/dev/null
  sed -n '/^## Conclusions/,$p' "$dir/README.md"
fi
tar -czf "$OUT/degradation-paper.tar.gz" -C "$OUT" --exclude='*.pt' --exclude='*.tmp' degradation-paper
ls -l "$OUT/degradation-paper.tar.gz"
