#!/usr/bin/env bash
# Every GPU figure in one call on the device machine (README, Performance; issue: the GPU).
#
# There: Python 3.12 with JAX, PyTorch and torchvision, no TensorFlow, no Keras, no network.
# Keras and its small missing dependencies travel as wheels in .whl (benchmarks/gpu_wheels.sh
# fetches them here). Up to four runs, one process each, within 8 minutes in all:
#   torchvision.json  the peer, torchvision's SSD300 in its fastest settings;
#   torch.json        this project on the PyTorch backend, op by op;
#   jax.json          this project on JAX: training, forward, end to end, input pipeline;
#   torch_compiled.json  the PyTorch backend with jit_compile=True (torch.compile), bfloat16
#                     training and batch 8 only, in the time left, if any;
#   runs.log          the runs' output, one after the other (the device tool brings back
#                     at most 8 files);
#   table.md          the README's table and each goal, met or missed by how much (gpu_table.py).
# Each run writes its JSON as it goes, so a run cut short keeps what it measured.
# On the H200 (2026-12-04, 14:25 UTC) the peer took 54 s, the PyTorch backend 94 s and JAX
# about 200 s before its input pipeline case, whose 4, 8 and 14 worker processes took about
# 30, 45 and 80 s: JAX's 230 s ran out at 8 workers, so it now times 4 and 14 and runs last,
# with what the others left. The compiled PyTorch run (the rest, 90 s) ended inside its
# warm-up, at torch.compile's recompilation limit in Keras' own code; it is skipped when
# fewer than 30 s are left.
#
#   device run: carry [".whl"], command "bash benchmarks/gpu_run.sh", timeout_s 540
#
# BENCH_ARGS goes before each run's own arguments: a quick check of this script on a CPU is
#   BENCH_ARGS="--model ssd7 --image-size 64 --train-batch 2 --steps 1 --repeats 1 --fit-steps 2
#   --pipeline-workers 2 --pipeline-images 16 --pipeline-batch 4" OUT=/tmp/gpu_out PATH=.venv/bin:$PATH bash benchmarks/gpu_run.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
BUDGET=${BUDGET:-470}
read -r -a EXTRA <<< "${BENCH_ARGS:-}"
mkdir -p "$OUT"
# Where Keras is already importable (a CPU check in a virtual environment), nothing is installed.
if ! python3 -c "import keras" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
# The host's cores (threads per core, sockets): the input pipeline's scaling depends on them.
lscpu 2>&1 | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\)|L3)' >> "$OUT/gpu.txt"
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
bench() {  # bench NAME BACKEND SECONDS ARGS...
    local name=$1 backend=$2 seconds=$3
    shift 3
    if (( seconds < 30 )); then echo "$name: skipped, ${seconds} s left" | tee -a "$OUT/runs.log"; return; fi
    echo "=== $name ($backend)" | tee -a "$OUT/runs.log"
    KERAS_BACKEND=$backend timeout "$seconds" python3 benchmarks/bench_gpu.py "${EXTRA[@]}" "$@" --json "$OUT/$name.json" \
        2>&1 | tee -a "$OUT/runs.log"
    echo "$name: exit ${PIPESTATUS[0]}, $(( $(date +%s) - START )) s since the start" | tee -a "$OUT/runs.log"
}
bench torchvision torch 90 --peer only
# The PyTorch backend with fewer and shorter timed runs: at torchvision's pace (about 400
# images/s) the default fit case alone (6 runs of 30 batches of 32) takes a minute a precision.
bench torch torch 150 --peer off --pipeline-workers none --confidences 0.01 --repeats 3 --fit-steps 10
bench jax jax "$(left)" --peer off --pipeline-workers 4,14
bench torch_compiled torch "$(left)" --peer off --jit-compile on --precisions bfloat16 --fit-steps 0 --infer-batches 8 \
    --confidences 0.01 --pipeline-workers none --steps 5 --repeats 3
python3 benchmarks/gpu_table.py "$OUT" > "$OUT/table.md"
