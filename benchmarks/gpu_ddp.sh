#!/usr/bin/env bash
# Data parallel on the GPUs of one machine (NCCL): the same ResNet-18 run (global batch 256) on 1 GPU and
# on every GPU under torchrun, with and without --sync-bn, then an elastic restart: a run killed
# mid-way by its own timeout continues under `--resume auto`. Prints each run's images/s per epoch.
# Needs a CIFAR-10 JPEG tree at $DATA (train/ and test/); runs go under ${OUT:-/tmp/gpu_ddp}.
set -u
OUT=${OUT:-/tmp/gpu_ddp}
DATA=${DATA:-/tmp/cifar-sub}
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 CNNARCH_CACHE=/tmp/cnnarch-cache
py=${PYTHON:-python3}
common=(--model resnet18 --data "$DATA" --val-split 0.1 -b 256 --lr 0.1 --epochs "${EPOCHS:-3}" --amp
        --channels-last --log-interval 0)  # fmt: skip
speed() { grep -E '^epoch [0-9]+/|^test|resuming' | sed -E 's/lr [^|]*\|//'; }
torchrun_n() { $py -m torch.distributed.run --nproc-per-node "$GPUS" --rdzv-backend c10d \
  --rdzv-endpoint 127.0.0.1:29534 "$@"; }

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'nccl', torch.cuda.nccl.version())"

echo "== 1 GPU"
$py -m cnnarch.cli train "${common[@]}" --overwrite --output "$OUT/gpu1" 2>&1 | speed
echo "== $GPUS GPUs (NCCL)"
torchrun_n -m cnnarch.cli train "${common[@]}" --overwrite --output "$OUT/gpu$GPUS" 2>&1 | speed
echo "== $GPUS GPUs, --sync-bn (nn.SyncBatchNorm)"
torchrun_n -m cnnarch.cli train "${common[@]}" --overwrite --sync-bn --output "$OUT/gpu$GPUS-syncbn" 2>&1 | speed
echo "== elastic: stopped after ${STOP:-60} s, then the same command continues from last.pt"
rm -rf "$OUT/elastic"
timeout "${STOP:-60}" "$py" -m torch.distributed.run --nproc-per-node "$GPUS" --rdzv-backend c10d \
  --rdzv-endpoint 127.0.0.1:29535 -m cnnarch.cli train "${common[@]}" --resume auto \
  --output "$OUT/elastic" 2>&1 | speed
torchrun_n --max-restarts 3 -m cnnarch.cli train "${common[@]}" --resume auto \
  --output "$OUT/elastic" 2>&1 | speed
