#!/usr/bin/env bash
# benchmarks/peak.py on the host CPU of a lent GPU machine (an Intel Xeon, with AMX where it is a Sapphire
# Rapids or later): one torch thread pinned to one core, that core's peak (the AMX kernel where the CPU
# has amx_bf16), the steps of cifar_fast (with torch.compile) and of cifar_fast_93, every lever on and
# off, and each convolution's weight gradient from oneDNN and as im2col + matmul. About 4 minutes.
#   bash benchmarks/host_cpu_peak.sh               # logs under ${OUT:-/tmp/host_cpu_peak}
# Extra arguments go to both runs (a smoke test: bash benchmarks/host_cpu_peak.sh --quick).
set -u
OUT=${OUT:-/tmp/host_cpu_peak}
CORE=${CORE:-1}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
py=${PYTHON:-python3}

lscpu | grep -E "^(Model name|CPU\(s\)|Thread\(s\) per core|Socket\(s\))"  # peak.py names the model, family and flags
$py -c "import torch; print('torch', torch.__version__, torch.backends.cpu.get_cpu_capability())"
echo "== cifar_fast on core $CORE, with torch.compile"
timeout "${LIMIT:-300}" taskset -c "$CORE" $py benchmarks/peak.py --compile "$@" 2>&1 | tee "$OUT/peak-cifar_fast.log"
echo "== cifar_fast_93 on core $CORE"
timeout "${LIMIT:-300}" taskset -c "$CORE" $py benchmarks/peak.py --model cifar_fast_93 --batches "$@" 2>&1 |
  tee "$OUT/peak-cifar_fast_93.log"
