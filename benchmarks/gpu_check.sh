#!/usr/bin/env bash
# One device call: install the carried wheels, print what the machine has, then run the throughput
# benchmark with its equality checks. Everything lands in $OUT (results.json, table.md, log.txt).
# Usage on the device machine, from the repository root, with .whl carried:  bash benchmarks/gpu_check.sh [args]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
export COLLAPSE_FAST_PROBE_TIMEOUT=${COLLAPSE_FAST_PROBE_TIMEOUT:-300}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
python3 -c "import sys, torch, diffusers, accelerate, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'diffusers', diffusers.__version__, 'accelerate', accelerate.__version__, 'numpy', numpy.__version__)" 2>&1 | tee "$OUT/versions.txt"
python3 benchmarks/gpu_throughput.py --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
