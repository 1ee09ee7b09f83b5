"""The GPU figures: this project's SSD300 on the current Keras backend, next to
torchvision's ``ssd300_vgg16`` on the same GPU, in one run.

Cases, each after warm-up (compilation) and as the median of `--repeats` timed runs:

* training images/s at batch `--train-batch` (32), float32 and bfloat16
  (``mixed_bfloat16``): `train_on_batch` with `SSDLoss` (hard negative mining) and SGD
  with momentum 0.9 at a warm-up learning rate (`--lr`, 1e-4: from random weights the
  notebook's 1e-3 sends the loss to NaN within a few steps), targets encoded beforehand
  (the input pipeline is the last case); the loss before and after is reported, and a
  non-finite one marks the figure;
* inference frames/s end to end at each of `--infer-batches` and `--confidences`: uint8
  images in, the cast to float32 in the graph, `DecodeDetections` (in-graph NMS, top 200),
  detections copied to the host; and the latency of one image;
* forward frames/s at batch 8 (raw predictions, no decoding), against torchvision's
  backbone and head;
* the input pipeline: `SSDDataAugmentation` + the SSD300 encoder, images/s through
  `keras_dataset(use_multiprocessing=True)` with each of `--pipeline-workers` worker
  processes, from 500x375 JPEG files, to compare with the training rate;
* the peer, torchvision's ``ssd300_vgg16(weights=None, weights_backbone=None,
  num_classes=21)`` in its fastest settings (bfloat16 autocast, channels_last,
  cudnn.benchmark): training at the same batch (its loss includes its own box matching
  and hard negative mining), forward, end to end at batch 8 with its post-processing at
  the same thresholds (score 0.01, NMS 0.45, 200 detections), batch-1 latency.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --json figures.json
    KERAS_BACKEND=torch python benchmarks/bench_gpu.py --peer off --torch-compile on

`benchmarks/gpu_run.sh` runs both backends on the device machine in one call. On a CPU,
`--model ssd7 --image-size 64 ...` makes a quick check (tests/test_bench_gpu.py).
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks.bench_core import random_labels, run_times  # noqa: E402
from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from ssd_keras_cli.configs import build, make_encoder, model_kwargs  # noqa: E402
from ssd_keras_cli.training import set_precision  # noqa: E402

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def device_name():
    """The accelerator Keras runs on, in words."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', device)}"
    if backend == "torch":
        import torch

        return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}" if gpus else "cpu"


def median_seconds(fn, repeats, warmup=1):
    return float(np.median(run_times(fn, repeats, warmup)))


# ---------------------------------------------------------------- this project


def training(name, kwargs, precision, batch, steps, repeats, lr, jit_compile, rng):
    """(images/s, first loss, last loss) of `train_on_batch` in `precision`."""
    set_precision(PRECISIONS[precision])
    try:
        keras.utils.set_random_seed(0)
        model, _ = build(name, kwargs)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9), loss=SSDLoss().compute_loss, jit_compile=jit_compile)
        height, width = kwargs["image_size"][:2]
        images = rng.integers(0, 256, (batch, height, width, 3)).astype(np.float32)
        targets = make_encoder(name, model)(random_labels(rng, batch, kwargs["n_classes"], min(height, width)))
        losses = [float(model.train_on_batch(images, targets))]

        def run():
            for _ in range(steps):
                loss = model.train_on_batch(images, targets)
            losses.append(float(loss))  # the host reads the loss: the steps have run

        rate = batch * steps / median_seconds(run, repeats)
        return rate, losses[0], losses[-1]
    finally:
        set_precision("float32")


def detector(name, kwargs, confidence):
    """uint8 images in, decoded detections out (the cast happens in the graph)."""
    model, _ = build(name, kwargs, "inference", confidence_thresh=confidence, iou_threshold=0.45, top_k=200, nms_max_output_size=400)
    inputs = keras.Input(tuple(kwargs["image_size"]), dtype="uint8")
    return keras.Model(inputs, model(keras.ops.cast(inputs, "float32")))


def inference(model, kwargs, batch, steps, repeats, rng):
    """(frames/s end to end, ms per call) at `batch`."""
    height, width = kwargs["image_size"][:2]
    images = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)

    def run():
        for _ in range(steps):
            np.asarray(model.predict_on_batch(images))  # detections on the host

    seconds = median_seconds(run, repeats, warmup=2) / steps
    return batch / seconds, seconds * 1e3


def forward(name, kwargs, batch, steps, repeats, rng):
    """Frames/s of the raw forward pass (no decoding)."""
    keras.utils.set_random_seed(0)
    model, _ = build(name, kwargs)
    height, width = kwargs["image_size"][:2]
    images = rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32)

    def run():
        for _ in range(steps):
            out = model.predict_on_batch(images)
        np.asarray(out)

    return batch * steps / median_seconds(run, repeats, warmup=2)


def pipeline(kwargs, workers, n_images, batch, repeats):
    """Images/s of the SSD300 training chain and encoder with `workers` worker processes."""
    from benchmarks.bench_data import write_dataset
    from data_generator.data_augmentation_chain_original_ssd import SSDDataAugmentation

    name = "ssd300"
    model, _ = build(name, kwargs)
    encoder = make_encoder(name, model)
    height, width = kwargs["image_size"][:2]
    with tempfile.TemporaryDirectory() as folder:
        dataset = write_dataset(folder, n_images, np.random.default_rng(0))
        data = dataset.keras_dataset(batch, transformations=[SSDDataAugmentation(height, width)], label_encoder=encoder,
                                     workers=workers, use_multiprocessing=True, seed=0)
        data[0]  # starts the workers

        def run():
            for i in range(len(data)):
                data[i]
            data.on_epoch_end()

        rate = len(data) * batch / median_seconds(run, repeats, warmup=0)
        data.close()
    return rate


# ---------------------------------------------------------------- the peer


def torchvision_peer(batch, infer_batch, steps, repeats, lr, rng):
    """torchvision's SSD300 in its fastest settings; a dict of figures, or the reason it did not run."""
    try:
        import torch
        import torchvision  # noqa: F401
        from torchvision.models.detection import ssd300_vgg16
    except Exception as error:  # not installed, or built for another torch ("operator torchvision::nms does not exist")
        return {"skipped": f"torchvision cannot be imported ({type(error).__name__}: {error})"}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast = dict(device_type=device, dtype=torch.bfloat16)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21).to(device).to(memory_format=torch.channels_last)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    images = torch.as_tensor(rng.integers(0, 256, (batch, 3, 300, 300), dtype=np.uint8), device=device)
    labels = random_labels(rng, batch, 20, 300)
    targets = [{"boxes": torch.as_tensor(np.asarray(l)[:, 1:], dtype=torch.float32, device=device),
                "labels": torch.as_tensor(np.asarray(l)[:, 0], dtype=torch.int64, device=device)} for l in labels]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    losses = []

    def train_steps():
        for _ in range(steps):
            with torch.autocast(**autocast):
                loss = sum(model(list(images.float().div(255).contiguous(memory_format=torch.channels_last)), targets).values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        losses.append(float(loss))
        sync()

    figures = {"train_bfloat16": batch * steps / median_seconds(train_steps, repeats)}
    figures["train_loss_first"], figures["train_loss_last"] = losses[0], losses[-1]
    model.eval()
    model.score_thresh, model.nms_thresh, model.detections_per_img = 0.01, 0.45, 200

    def end_to_end(n):
        frames = torch.as_tensor(rng.integers(0, 256, (n, 3, 300, 300), dtype=np.uint8), device=device)

        def run():
            with torch.no_grad(), torch.autocast(**autocast):
                for _ in range(steps):
                    detections = model(list(frames.float().div(255)))
                    [{k: v.cpu() for k, v in d.items()} for d in detections]

        return median_seconds(run, repeats, warmup=2) / steps

    seconds = end_to_end(infer_batch)
    figures["end_to_end_batch8_fps"] = infer_batch / seconds
    figures["latency_batch1_ms"] = end_to_end(1) * 1e3
    frames = torch.as_tensor(rng.uniform(0, 1, (infer_batch, 3, 300, 300)), dtype=torch.float32, device=device)
    frames = frames.contiguous(memory_format=torch.channels_last)

    def forward_only():
        with torch.no_grad(), torch.autocast(**autocast):
            for _ in range(steps):
                model.head(list(model.backbone(frames).values()))
        sync()

    figures["forward_batch8_fps"] = infer_batch * steps / median_seconds(forward_only, repeats, warmup=2)
    figures["device"] = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    figures["torchvision"] = torchvision.__version__
    return figures


# ---------------------------------------------------------------- main


def _ints(text):
    return [] if text in ("", "none") else [int(v) for v in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ssd300", choices=("ssd300", "ssd512", "ssd7"), help="model (default ssd300)")
    parser.add_argument("--image-size", type=int, help="square input size (default: the model's)")
    parser.add_argument("--train-batch", type=int, default=32, help="training batch (default 32)")
    parser.add_argument("--precisions", default="float32,bfloat16", help="training precisions: float32, bfloat16, float16")
    parser.add_argument("--infer-batches", default="1,8", help="inference batch sizes (default 1,8)")
    parser.add_argument("--confidences", default="0.01,0.5", help="decoding confidence thresholds (default 0.01,0.5)")
    parser.add_argument("--lr", type=float, default=1e-4, help="SGD learning rate of the training case (default 1e-4)")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                        help="Keras' jit_compile (on: torch.compile on the torch backend; default auto)")
    parser.add_argument("--pipeline-workers", default="4,8,14", help="worker processes of the input pipeline case, or none")
    parser.add_argument("--pipeline-images", type=int, default=512, help="JPEG files of the input pipeline case (default 512)")
    parser.add_argument("--peer", choices=("auto", "on", "off"), default="auto",
                        help="run torchvision's SSD300 too (auto: when torchvision imports)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    name = args.model
    kwargs = model_kwargs(name, 20, None if args.image_size is None else (args.image_size, args.image_size, 3))
    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    rng = np.random.default_rng(0)
    figures = {"device": device_name(), "backend": keras.backend.backend(), "keras": keras.__version__, "model": name,
               "image_size": list(kwargs["image_size"][:2]), "steps": args.steps, "repeats": args.repeats}
    print(f"{name} {kwargs['image_size'][0]}x{kwargs['image_size'][1]} on {figures['device']}, Keras {keras.__version__} "
          f"({figures['backend']}); medians of {args.repeats} runs of {args.steps} steps", flush=True)

    def record(key, value, text):
        figures[key] = value
        print(text, flush=True)
        if args.json:  # written as it goes: a run cut short keeps what it measured
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)

    for precision in args.precisions.split(","):
        rate, first, last = training(name, kwargs, precision, args.train_batch, args.steps, args.repeats, args.lr, jit, rng)
        record(f"train_{precision}", dict(images_per_s=rate, loss_first=first, loss_last=last, finite=bool(np.isfinite(last))),
               f"training, batch {args.train_batch}, {precision:9s} {rate:9.1f} images/s (loss {first:.3f} -> {last:.3f})")
    rate = forward(name, kwargs, 8, args.steps, args.repeats, rng)
    record("forward_batch8_fps", rate, f"forward, batch 8, raw output            {rate:9.1f} frames/s")
    for confidence in (float(c) for c in args.confidences.split(",")):
        model = detector(name, kwargs, confidence)
        for batch in _ints(args.infer_batches):
            fps, ms = inference(model, kwargs, batch, args.steps, args.repeats, rng)
            record(f"end_to_end_batch{batch}_conf{confidence}", dict(frames_per_s=fps, ms=ms),
                   f"end to end, batch {batch:<2d}, confidence {confidence:<5}  {fps:9.1f} frames/s, {ms:7.2f} ms per call")
    for workers in _ints(args.pipeline_workers):
        rate = pipeline(model_kwargs("ssd300", 20), workers, args.pipeline_images, 32, max(1, min(args.repeats, 3)))
        record(f"pipeline_{workers}_workers", rate, f"input pipeline (SSD300 chain + encoder), {workers:2d} processes {rate:9.1f} images/s")
    if args.peer != "off":
        peer = torchvision_peer(args.train_batch, 8, args.steps, args.repeats, args.lr, rng)
        if args.peer == "on" and "skipped" in peer:
            raise SystemExit(f"--peer on: {peer['skipped']}")
        record("torchvision", peer, "torchvision ssd300_vgg16: " + json.dumps({k: (round(v, 2) if isinstance(v, float) else v)
                                                                              for k, v in peer.items()}))
    return figures


if __name__ == "__main__":
    main()
