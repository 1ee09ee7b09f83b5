#!/usr/bin/env bash
# Every GPU figure in one call on the device machine (README, Performance; issue: the GPU).
#
# There: Python 3.12 with JAX, PyTorch and torchvision, no TensorFlow, no Keras, no network.
# Keras and its small missing dependencies travel as wheels in .whl (benchmarks/gpu_wheels.sh
# fetches them here). The JAX run measures the training, inference and input-pipeline cases
# and torchvision's SSD300 beside them; the PyTorch-backend run measures ours on PyTorch.
# Each run writes its JSON as it goes, so a run cut short keeps what it measured.
#
#   device run: carry [".whl"], command "bash benchmarks/gpu_run.sh", timeout_s 540
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
START=$(date +%s)
KERAS_BACKEND=jax timeout 300 python3 benchmarks/bench_gpu.py --peer on --json "$OUT/jax.json" 2>&1 | tee "$OUT/jax.log"
echo "jax run: $(( $(date +%s) - START )) s" | tee -a "$OUT/jax.log"
KERAS_BACKEND=torch timeout $(( 480 - ($(date +%s) - START) )) python3 benchmarks/bench_gpu.py --peer off --pipeline-workers none \
    --confidences 0.01 --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
echo "all: $(( $(date +%s) - START )) s" | tee -a "$OUT/torch.log"
