#!/usr/bin/env bash
# The same `cnnarch train` commands on a CUDA machine: bf16 and fp16 autocast (GradScaler), resume,
# --compile, ensemble eval, and bench_train.py on the GPU and on that machine's CPU.
# Needs a CIFAR-10 JPEG tree at $DATA (train/ and test/); writes runs under ${OUT:-/tmp/gpu_check}.
set -u
OUT=${OUT:-/tmp/gpu_check}
DATA=${DATA:-/tmp/cifar-sub}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 CNNARCH_CACHE=/tmp/cnnarch-cache
py=${PYTHON:-python3}
common=(--data "$DATA" --model resnet18 -b 256 --lr 0.1 --val-split 0.1 --log-interval 0)
quiet() { sed '/^{$/,/^}$/d'; }  # the resolved configuration (a JSON block) is long; keep the rest

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
grep -m1 'model name' /proc/cpuinfo; grep -o 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '; echo

echo "== bf16 autocast + channels-last, 4 epochs"
$py -m cnnarch.cli train "${common[@]}" --epochs 4 --amp --channels-last --output "$OUT/bf16" | quiet
echo "== fp16 autocast with GradScaler, 2 epochs, then resume to 3"
$py -m cnnarch.cli train "${common[@]}" --epochs 2 --amp --amp-dtype float16 --output "$OUT/fp16" | quiet
$py -m cnnarch.cli train --resume "$OUT/fp16/last.pt" --epochs 3 | quiet
echo "== --compile, 2 epochs"
time $py -m cnnarch.cli train "${common[@]}" --epochs 2 --amp --channels-last --compile --output "$OUT/compiled" | quiet
echo "== ensemble of two, ten-crop"
$py -m cnnarch.cli eval "$OUT/bf16/last.pt" "$OUT/fp16/last.pt" --ten-crop
echo "== bench_train on the GPU"
$py benchmarks/bench_train.py --data "$DATA" --images 4096 --rounds 3 -b 256 --ref-workers 8
echo "== bench_train on this machine's CPU"
CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=12 $py benchmarks/bench_train.py --data "$DATA" --device cpu --images 1024 \
  --rounds 3 -b 128 --ref-workers 4
