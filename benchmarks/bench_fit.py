"""Benchmark of training from the Keras adapter against training from arrays.

SSD7 at 128x128 (the demo's configuration), batch 4, on a synthetic shapes data set of
200 images (50 steps an epoch), `ssd_keras.training.engine.train` with flip augmentation:
from arrays built before each epoch (``materialize=True``, the batch building not
counted), and from `keras_dataset()` with one thread and with two forked worker
processes. Prints the median milliseconds per step over the epochs after the first.

    python benchmarks/bench_fit.py [--epochs 4]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import results  # noqa: E402
from ssd_keras.data.loading import load_dataset  # noqa: E402
from ssd_keras.data.synthetic_shapes import SHAPE_CLASSES, make_shapes_dataset  # noqa: E402
from ssd_keras.demo import ENCODER_OVERRIDES, MODEL_OVERRIDES  # noqa: E402
from ssd_keras.training import TrainingConfig, train  # noqa: E402

STEPS = 50


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.per_step = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.per_step.append((time.perf_counter() - self.start) / STEPS * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per configuration, the first not counted (default 4)"
    )
    results.add_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        info = make_shapes_dataset(os.path.join(root, "shapes"), n_trainval=4 * STEPS, n_test=4, verbose=False)
        dataset = load_dataset(
            "voc",
            [info["images_dir"]],
            [info["trainval"]],
            [info["annotations_dir"]],
            classes=list(SHAPE_CLASSES),
            in_memory=True,
            verbose=False,
        )
        rows = []
        for name, options in [
            ("fit(arrays), batches built before each epoch", dict(materialize=True)),
            ("fit(keras_dataset(workers=1))", dict(workers=1)),
            ("fit(keras_dataset(workers=2, use_multiprocessing=True))", dict(workers=2, use_multiprocessing=True)),
        ]:
            timer = StepTimer()
            config = TrainingConfig(
                model="ssd7",
                class_names=tuple(SHAPE_CLASSES),
                out_dir=os.path.join(root, "run"),
                image_size=(128, 128, 3),
                epochs=args.epochs,
                batch_size=4,
                optimizer="adam",
                learning_rate=1e-3,
                lr_schedule="constant",
                augment="flip",
                seed=0,
                model_overrides=MODEL_OVERRIDES,
                encoder_overrides=ENCODER_OVERRIDES,
                verbose=0,
                overwrite=True,
                **options,
            )
            train(config, dataset, callbacks=[timer])
            rows.append((name, float(np.median(timer.per_step[1:]))))
    print(f"SSD7 128x128, batch 4, {STEPS} steps an epoch, median over epochs 2-{args.epochs}, {os.cpu_count()} CPUs")
    for name, ms in rows:
        print(f"{name:58s} {ms:6.1f} ms/step")
    results.save(
        args,
        f"bench_fit_{keras.backend.backend()}",
        "Training SSD7 (128x128, batch 4, flips) from arrays or from keras_dataset",
        ["training from", "ms per step"],
        [[name, round(ms, 1)] for name, ms in rows],
        f"{STEPS} steps an epoch, the median over epochs 2-{args.epochs}",
    )


if __name__ == "__main__":
    main()
