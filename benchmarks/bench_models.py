"""Benchmarks of the Keras models: SSD300 inference at batch 1 and a training step at batch 8.

Prints the median (and quartiles) of repeated runs in milliseconds, after warm-up
runs that trace the functions. Run with ``make bench`` or
``python benchmarks/bench_models.py [--repeats N]``. Runs on the GPU if TensorFlow
sees one, else on the CPU.

* inference: SSD300 (Pascal VOC: 20 classes, 8732 anchors) on one 300x300 image,
  `model(x, training=False)` in a `tf.function`: raw output ('training' mode) and
  with the `DecodeDetections` / `DecodeDetectionsFast` layers ('inference' modes,
  confidence_thresh=0.5 as in the inference notebook).
* training step: `model.train_on_batch` with `SSDLoss` and SGD (momentum 0.9, the
  notebook's optimizer) on a batch of 8 images and `SSDInputEncoder` targets.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.bench_core import SSD300_VOC, random_labels, run_times  # noqa: E402
from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from models.keras_ssd300 import ssd_300  # noqa: E402
from ssd_encoder_decoder.ssd_input_encoder import SSDInputEncoder  # noqa: E402


def median_ms(fn, repeats, warmup=2):
    return np.percentile(run_times(fn, repeats, warmup) * 1e3, [25, 50, 75])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per benchmark (default 5)")
    args = parser.parse_args()
    device = "GPU: " + tf.config.list_physical_devices("GPU")[0].name if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device: {device}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    rng = np.random.default_rng(0)
    model_args = dict(image_size=(300, 300, 3), n_classes=20, scales=SSD300_VOC["scales"], confidence_thresh=0.5)
    image = tf.constant(rng.uniform(0, 255, (1, 300, 300, 3)).astype(np.float32))

    rows = []
    for mode in ("training", "inference", "inference_fast"):
        model = ssd_300(mode=mode, **model_args)
        forward = tf.function(lambda x, model=model: model(x, training=False))
        label = "raw output" if mode == "training" else f"'{mode}' mode (decoded)"
        rows.append((f"SSD300 inference, batch 1, {label}", lambda f=forward: f(image).numpy()))

    model = ssd_300(**model_args)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9), loss=SSDLoss().compute_loss)
    encoder = SSDInputEncoder(**SSD300_VOC)
    images = rng.uniform(0, 255, (8, 300, 300, 3)).astype(np.float32)
    targets = encoder(random_labels(rng, 8))
    rows.append(("SSD300 training step, batch 8 (SGD, SSDLoss)", lambda: model.train_on_batch(images, targets)))

    print(f"{'benchmark':56s} {'median ms':>10s} {'p25':>8s} {'p75':>8s}")
    for name, fn in rows:
        p25, p50, p75 = median_ms(fn, args.repeats)
        print(f"{name:56s} {p50:10.1f} {p25:8.1f} {p75:8.1f}")


if __name__ == "__main__":
    main()
