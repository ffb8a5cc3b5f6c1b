#!/usr/bin/env bash
# Ablation of the cifar-fast recipe: the full recipe, then each trick switched off alone (one seed
# each), and longer schedules. Prints one line per variant: test top-1 without and with TTA, seconds.
#   DATA=/tmp/cifar10-jpeg bash benchmarks/ablate_cifar_fast.sh [extra cnnarch train options]
set -u
DATA=${DATA:-/tmp/cifar10-jpeg}
OUT=${OUT:-/tmp/cifar_fast_ablate}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 CNNARCH_CACHE=${CNNARCH_CACHE:-/tmp/cnnarch-cache}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # set here: no restart per variant
py=${PYTHON:-python3}
variants=(
  "full recipe|"
  "no whitening init|--no-whiten"
  "no BN-shift lr scale|--bias-lr-scale 1"
  "BN momentum 0.1 (torch default)|--bn-momentum 0.1"
  "no label smoothing|--smoothing 0"
  "no translate (flip only)|--augment flip"
  "translate 4 px instead of 2|--crop-padding 4"
  "cosine instead of one cycle|--sched cosine --warmup-epochs 0"
  "no Nesterov|--no-nesterov"
  "no bf16 autocast|--no-amp"
  "no channels-last|--no-channels-last"
  "15 epochs|--epochs 15"
  "20 epochs|--epochs 20"
)
i=0
for v in "${variants[@]}"; do
  name=${v%%|*}; opts=${v#*|}; i=$((i + 1))
  # shellcheck disable=SC2086
  log=$(timeout "${LIMIT_EACH:-60}" $py -m cnnarch.cli train --recipe cifar-fast --data "$DATA" \
    --output "$OUT/$i" --target-accuracy 90 93 94 $opts "$@" 2>&1)
  plain=$(grep -o 'test ([0-9]* images): top-1 [0-9.]*%' <<<"$log" | grep -o 'top-1 [0-9.]*%')
  tta=$(grep -o 'TTA.*top-1 [0-9.]*%' <<<"$log" | grep -o '[0-9.]*%$')
  t=$(grep -o '^time: [0-9.]* s training' <<<"$log" | grep -o '[0-9.]*')
  echo "$name | $opts | ${plain:-failed} | TTA ${tta:--} | ${t:--} s training"
done
