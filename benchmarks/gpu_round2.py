"""The second GPU round in one call on the device machine: profile JAX's training step and
measure the three goals the first round missed, next to torchvision's SSD300 in the same call.

Runs `bench_gpu.py` three times, one process each, within `--budget` seconds:

1. ``torchvision.json``: the peer (training at batch 32 in bfloat16, forward at batch 8);
2. ``jax.json``: this project on JAX: bfloat16 training at batch 32 (``train_on_batch``,
   ``fit`` from host arrays, the step alone), the `Detector` at batch 1 and 8, and a
   ``jax.profiler`` trace of the training step summarised as its top operations;
3. ``torch.json``: the PyTorch backend: forward at batch 8 and the `Detector` at batch 8
   and 1;

then ``goals.json`` and ``table.md``: each goal, met or missed by how much. Each run writes
its JSON as it goes, so a run cut short keeps what it measured.

On the device machine (Python 3.12, JAX, PyTorch, torchvision, no Keras, no network), with
Keras carried as wheels in ``.whl`` (``benchmarks/gpu_wheels.sh``)::

    device run: carry [".whl"], command "python3 benchmarks/gpu_round2.py --out $OUT", timeout_s 540

On a CPU, ``--quick`` makes a check of the script in seconds (tests/test_bench_gpu.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = [
    "--model", "ssd7", "--image-size", "64", "--train-batch", "2", "--steps", "1", "--repeats", "1",
    "--fit-steps", "2", "--pipeline-workers", "none", "--confidences", "0.01",
]  # fmt: skip
# (name, backend, share of the budget, arguments)
RUNS = (
    ("torchvision", "torch", 0.2, ["--peer", "only"]),
    (
        "jax",
        "jax",
        0.5,
        ["--peer", "off", "--only", "train,detector,profile", "--precisions", "bfloat16", "--detector-batches", "1,8"],
    ),
    (
        "torch",
        "torch",
        0.3,
        ["--peer", "off", "--only", "forward,detector", "--precisions", "bfloat16", "--detector-batches", "8,1"],
    ),
)
GOALS = dict(fit_images_per_s=2500.0, detector_batch1_ms=3.0, torch_forward_ratio=2.0)


def _install_wheels():
    """Keras from the carried wheels, where it is not importable (the device machine)."""
    if subprocess.run([sys.executable, "-c", "import keras"], capture_output=True).returncode == 0:
        return {}
    wheels = [os.path.join(ROOT, ".whl", name) for name in sorted(os.listdir(os.path.join(ROOT, ".whl")))]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", "/tmp/site", *wheels],
        check=True,
    )
    return {"PYTHONPATH": os.pathsep.join(["/tmp/site", ROOT])}


def goals(figures):
    """Each goal of the round from the three runs' figures: ``[{"goal", "measured",
    "target", "met"}]`` (measured None where a run did not get that far)."""
    jax_run, torch_run, peer = (figures.get(k, {}) for k in ("jax", "torch", "torchvision"))
    fit = jax_run.get("train_bfloat16", {}).get("fit_images_per_s")
    latency = jax_run.get("detector_batch1", {}).get("ms")
    torch_rate = torch_run.get("detector_batch8", {}).get("frames_per_s")
    peer_rate = peer.get("torchvision", {}).get("forward_batch8_fps")
    ratio = peer_rate / torch_rate if torch_rate and peer_rate else None
    rows = [
        ("JAX bfloat16 training, batch 32, fit (images/s)", fit, f">= {GOALS['fit_images_per_s']:.0f}",
         fit is not None and fit >= GOALS["fit_images_per_s"]),
        ("Detector on JAX, batch 1, end to end (ms)", latency, f"<= {GOALS['detector_batch1_ms']}",
         latency is not None and latency <= GOALS["detector_batch1_ms"]),
        ("torchvision forward / PyTorch-backend Detector, batch 8", ratio, f"<= {GOALS['torch_forward_ratio']}",
         ratio is not None and ratio <= GOALS["torch_forward_ratio"]),
    ]  # fmt: skip
    return [dict(goal=g, measured=m, target=t, met=bool(ok)) for g, m, t, ok in rows]


def table(figures, rows):
    """The round's results as Markdown: the goals, then the profile's top operations."""
    lines = ["| goal | measured | target | met |", "|---|---|---|---|"]
    for row in rows:
        value = "not measured" if row["measured"] is None else f"{row['measured']:.2f}"
        lines.append(f"| {row['goal']} | {value} | {row['target']} | {'yes' if row['met'] else 'no'} |")
    profile = figures.get("jax", {}).get("profile_train_bfloat16") or []
    if profile:
        lines += ["", "| share | ms | calls | operation |", "|---|---|---|---|"]
        lines += [f"| {p['share']:.1%} | {p['ms']:.2f} | {p['count']} | `{p['name'][:80]}` |" for p in profile[:20]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Runs the three benchmarks, then writes the goals and the table; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu_out", help="folder of the results (default gpu_out)")
    parser.add_argument("--budget", type=float, default=470, help="seconds for the three runs (default 470)")
    parser.add_argument("--quick", action="store_true", help="a tiny CPU configuration that checks the script")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_CPP_MIN_LOG_LEVEL="3")
    env.update(_install_wheels())
    env.setdefault("PYTHONPATH", ROOT)
    start, figures = time.monotonic(), {}
    with open(os.path.join(args.out, "runs.log"), "a") as log:
        for name, backend, share, extra in RUNS:
            path = os.path.join(args.out, f"{name}.json")
            profile = ["--profile", os.path.join(args.out, "profile")] if backend == "jax" else []
            command = [sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"), *(QUICK if args.quick else [])]
            command += [*extra, *profile, "--json", path]
            seconds = max(30.0, args.budget * share)
            log.write(f"=== {name} ({backend}), at most {seconds:.0f} s: {' '.join(command)}\n")
            log.flush()
            try:
                result = subprocess.run(
                    command, env=dict(env, KERAS_BACKEND=backend), stdout=log, stderr=subprocess.STDOUT, timeout=seconds
                )
                log.write(f"{name}: exit {result.returncode}, {time.monotonic() - start:.0f} s since the start\n")
            except subprocess.TimeoutExpired:
                log.write(f"{name}: stopped after {seconds:.0f} s\n")
            if os.path.exists(path):
                with open(path) as f:
                    figures[name] = json.load(f)
    _drop_raw_trace(os.path.join(args.out, "profile"))
    rows = goals(figures)
    with open(os.path.join(args.out, "goals.json"), "w") as f:
        json.dump(dict(goals=rows, figures=figures), f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table(figures, rows))
    return figures, rows


def _drop_raw_trace(folder):
    """The raw trace files are large; their summary is in jax.json."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
