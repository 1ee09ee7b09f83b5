"""The GPU figures of the multi-GPU / export issue, in one command.

* training: images per second of `model.train_on_batch` (SSDLoss, SGD with momentum 0.9,
  the SSD300 notebook's optimizer) on a fixed batch of images and encoded targets, in
  float32 and in each mixed-precision policy asked for (`--precisions`); the input
  pipeline is not included (see `bench_data.py` for it);
* inference: frames per second end to end with decoding, uint8 images in, detections out
  (``DecodeDetections``, confidence_thresh 0.5, as the inference notebook), at each batch
  size of `--infer-batches`, the model called in a `tf.function` and the detections
  copied back to the host.

Prints medians over `--repeats` timed runs after warm-up. Runs on the first GPU that
TensorFlow sees, else on the CPU (`--model ssd7 --image-size 64` makes a quick check).

    python benchmarks/bench_gpu.py                                  # SSD300, batch 32, float32 and mixed_float16
    python benchmarks/bench_gpu.py --precisions float32,mixed_bfloat16 --infer-batches 1,8,32
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.bench_core import random_labels, run_times  # noqa: E402
from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from ssd_keras_cli.configs import build, make_encoder, model_kwargs  # noqa: E402
from ssd_keras_cli.training import set_precision  # noqa: E402


def _median_seconds(fn, repeats, warmup):
    return float(np.median(run_times(fn, repeats, warmup)))


def training_images_per_second(name, kwargs, precision, batch, steps, repeats, rng):
    set_precision(precision)
    try:
        keras.utils.set_random_seed(0)
        model, sizes = build(name, kwargs)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9), loss=SSDLoss().compute_loss)
        height, width = kwargs["image_size"][:2]
        images = rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32)
        targets = make_encoder(name, kwargs, sizes)(random_labels(rng, batch, kwargs["n_classes"], min(height, width)))

        def run():
            for _ in range(steps):
                loss = model.train_on_batch(images, targets)
            if not np.isfinite(loss):
                raise FloatingPointError(f"{precision}: the loss is {loss}")

        return batch * steps / _median_seconds(run, repeats, warmup=1)
    finally:
        set_precision("float32")


def inference_frames_per_second(name, kwargs, batch, steps, repeats, rng):
    keras.utils.set_random_seed(0)
    model, _ = build(name, kwargs, "inference", confidence_thresh=0.5, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
    height, width = kwargs["image_size"][:2]

    @tf.function
    def detect(images):
        return model(tf.cast(images, tf.float32), training=False)

    images = tf.constant(rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8))

    def run():
        for _ in range(steps):
            detect(images).numpy()

    return batch * steps / _median_seconds(run, repeats, warmup=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ssd300", choices=("ssd300", "ssd512", "ssd7"), help="model (default ssd300)")
    parser.add_argument("--image-size", type=int, help="square input size (default: the model's)")
    parser.add_argument("--train-batch", type=int, default=32, help="training batch (default 32)")
    parser.add_argument("--precisions", default="float32,mixed_float16", help="comma-separated dtype policies to train in")
    parser.add_argument("--infer-batches", default="1,8", help="comma-separated inference batch sizes (default 1,8)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    gpus = tf.config.list_physical_devices("GPU")
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name) if gpus else "CPU"
    kwargs = model_kwargs(args.model, 20, None if args.image_size is None else (args.image_size, args.image_size, 3))
    rng = np.random.default_rng(0)
    print(f"{args.model} {kwargs['image_size'][0]}x{kwargs['image_size'][1]} on {device}, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; medians of {args.repeats} runs of {args.steps} steps")
    figures = {"device": device, "model": args.model, "image_size": list(kwargs["image_size"][:2])}
    for precision in args.precisions.split(","):
        rate = training_images_per_second(args.model, kwargs, precision, args.train_batch, args.steps, args.repeats, rng)
        figures[f"train_{precision}_batch{args.train_batch}"] = rate
        print(f"training, batch {args.train_batch}, {precision:15s} {rate:10.1f} images/s")
    for batch in (int(b) for b in args.infer_batches.split(",")):
        rate = inference_frames_per_second(args.model, kwargs, batch, args.steps, args.repeats, rng)
        figures[f"inference_batch{batch}"] = rate
        print(f"inference with decoding, batch {batch:<3d}          {rate:10.1f} frames/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return figures


if __name__ == "__main__":
    main()
