#!/usr/bin/env bash
# cifar-fast on a CUDA GPU: `cnnarch train --recipe cifar-fast` once (time to each milestone), then
# benchmarks/bench_cifar_fast.py: 3 seeds end to end and resnet-cifar (ResNet-20) with the same budget.
# Needs the CIFAR-10 JPEG tree at $DATA (train/ and test/). Every step has its own time limit, so a slow
# step cannot eat the next one's; the whole script stays under ~3 minutes on an H100.
#   DATA=/tmp/cifar10-jpeg bash benchmarks/gpu_cifar_fast.sh
# Extra arguments go to both commands (a CPU smoke test of this script:
#   DEVICE=cpu bash benchmarks/gpu_cifar_fast.sh --epochs 1 --limit-train 2048 --limit-val 200 --threads 1).
set -u
DATA=${DATA:-/tmp/cifar10-jpeg}
OUT=${OUT:-/tmp/cifar_fast_gpu}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 CNNARCH_CACHE=${CNNARCH_CACHE:-/tmp/cnnarch-cache}
py=${PYTHON:-python3}
quiet() { sed '/^{$/,/^}$/d'; }  # the resolved configuration (a JSON block) is long; keep the rest

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
grep -m1 'model name' /proc/cpuinfo; nproc
if [ ! -d "$DATA/train" ]; then echo "no CIFAR-10 JPEG tree at $DATA (set DATA=...)"; exit 2; fi

echo "== cnnarch train --recipe cifar-fast (seed 0; builds the uint8 cache first)"
timeout "${LIMIT_TRAIN:-75}" $py -m cnnarch.cli train --recipe cifar-fast --data "$DATA" --device "$DEVICE" \
  --output "$OUT/train" "$@" | quiet
echo "== bench_cifar_fast.py: seeds 0 1 2, then resnet-cifar with the same budget"
timeout "${LIMIT_BENCH:-110}" $py benchmarks/bench_cifar_fast.py --data "$DATA" --device "$DEVICE" \
  --seeds 0 1 2 --output "$OUT/bench" "$@"
echo "exit status $?"
