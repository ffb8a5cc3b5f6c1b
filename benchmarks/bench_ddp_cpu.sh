#!/usr/bin/env bash
# Data parallel on one CPU machine: the same ResNet-20 run (global batch 128) in 1 process with all the
# cores' threads, and in N processes under torchrun (gloo) sharing them (--threads 0: cores / processes),
# with and without --sync-bn. Prints each run's images/s per epoch (the first epoch includes warm-up).
# Needs a CIFAR-10 copy at $DATA (default ../shared/data/cifar10-jpeg); runs go under ${OUT:-/tmp/bench_ddp}.
set -eu
OUT=${OUT:-/tmp/bench_ddp}
DATA=${DATA:-../shared/data/cifar10-jpeg}
N=${N:-2}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
py=${PYTHON:-python3}
common=(--model resnet20 --data "$DATA" --limit-train "${IMAGES:-5120}" --limit-val 256 --val-split 0 -b 128
        --epochs "${EPOCHS:-2}" --lr 0.1 --sched none --threads 0 --log-interval 0 --overwrite)  # fmt: skip
speed() { grep -E '^epoch [0-9]+/' | sed -E 's/.*\| ([0-9]+ img\/s, [0-9.]+ s).*/\1/' | paste -sd ' '; }

grep -m1 'model name' /proc/cpuinfo; echo "cores available: $(nproc); $(date -u +%F); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "1 process: $($py -m cnnarch.cli train "${common[@]}" --output "$OUT/p1" 2>&1 | speed)"
run_n() {
  $py -m torch.distributed.run --nproc-per-node "$N" --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:29533 \
    -m cnnarch.cli train "${common[@]}" "$@" 2>&1 | speed
}
echo "$N processes: $(run_n --output "$OUT/p$N")"
echo "$N processes --sync-bn: $(run_n --sync-bn --output "$OUT/p$N-syncbn")"
