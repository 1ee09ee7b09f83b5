"""Benchmarks of the Keras models on the current backend (``KERAS_BACKEND``):
SSD300 inference at batch 1, and a training step of SSD300 and of SSD7 at batch 8.

Prints the median (and quartiles) of repeated runs in milliseconds, after warm-up
runs that trace and compile the functions (Keras' `predict_on_batch` and
`train_on_batch`: `tf.function` on TensorFlow, `jax.jit` on JAX, eager on PyTorch).

* inference: SSD300 (Pascal VOC: 20 classes, 8732 anchors) on one 300x300 image: raw
  output ('training' mode) and with the `DecodeDetections` / `DecodeDetectionsFast`
  layers ('inference' modes, confidence_thresh=0.5 as in the inference notebook).
* training step: `train_on_batch` with `SSDLoss` and SGD (momentum 0.9, the SSD300
  notebook's optimizer) on 8 images and their `SSDInputEncoder` targets; SSD300 at
  300x300, SSD7 in the SSD7 notebook's configuration (300x480, 5 classes).

    KERAS_BACKEND=jax python benchmarks/bench_models.py [--repeats N] [--json FILE]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks import results  # noqa: E402
from benchmarks.bench_core import random_labels, run_times  # noqa: E402
from ssd_keras.losses.ssd_loss import SSDLoss  # noqa: E402
from ssd_keras.models.presets import build, builder_kwargs, make_encoder  # noqa: E402


def median_ms(fn, repeats, warmup=2):
    return np.percentile(run_times(fn, repeats, warmup) * 1e3, [25, 50, 75])


def training_step(name, n_classes, rng, batch=8):
    """`train_on_batch` of model `name` on a fixed batch (a callable)."""
    kwargs = builder_kwargs(name, n_classes)
    model, _ = build(name, kwargs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9), loss=SSDLoss().compute_loss)
    height, width = kwargs["image_size"][:2]
    images = rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32)
    targets = make_encoder(name, model)(random_labels(rng, batch, n_classes, min(height, width)))
    return lambda: model.train_on_batch(images, targets)


def rows(rng):
    image = rng.uniform(0, 255, (1, 300, 300, 3)).astype(np.float32)
    out = []
    for mode in ("training", "inference", "inference_fast"):
        model, _ = build("ssd300", builder_kwargs("ssd300", 20), mode, confidence_thresh=0.5)
        label = "raw output" if mode == "training" else f"'{mode}' mode (decoded)"
        out.append((f"SSD300 inference, batch 1, {label}", lambda m=model: m.predict_on_batch(image)))
    out.append(("SSD300 training step, batch 8 (SGD, SSDLoss)", training_step("ssd300", 20, rng)))
    out.append(("SSD7 training step, batch 8, 300x480 (SGD, SSDLoss)", training_step("ssd7", 5, rng)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per benchmark (default 5)")
    results.add_argument(parser)
    args = parser.parse_args()
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    figures = {}
    print(f"{'benchmark':56s} {'median ms':>10s} {'p25':>8s} {'p75':>8s}")
    for name, fn in rows(np.random.default_rng(0)):
        p25, p50, p75 = median_ms(fn, args.repeats)
        figures[name] = [p25, p50, p75]
        print(f"{name:56s} {p50:10.1f} {p25:8.1f} {p75:8.1f}", flush=True)
    backend = keras.backend.backend()
    results.save(
        args,
        f"bench_models_{backend}",
        f"SSD300 and SSD7 inference and training steps on {backend}",
        ["benchmark", "median ms", "p25 ms", "p75 ms"],
        [[name, round(p50, 1), round(p25, 1), round(p75, 1)] for name, (p25, p50, p75) in figures.items()],
        f"medians of {args.repeats} runs after a warm-up, random weights",
    )


if __name__ == "__main__":
    main()
