"""The GPU figures: this project's SSD300 on the current Keras backend, next to
torchvision's ``ssd300_vgg16`` on the same GPU, in one run.

Cases, each after warm-up (compilation) and as the median of `--repeats` timed runs:

* training images/s at batch `--train-batch` (32), bfloat16 (``mixed_bfloat16``) and
  float32: `SSDLoss` (hard negative mining) and SGD with momentum 0.9 at a warm-up
  learning rate (`--lr`, 1e-4: from random weights the notebook's 1e-3 sends the loss to
  NaN within a few steps), targets encoded beforehand (the input pipeline is a case of
  its own). Two ways: `train_on_batch` on a batch already on the device (the step and
  Keras' per-step overhead, which includes reading the loss back), and `fit` from
  NumPy arrays in host memory (`--fit-steps` steps, as a user trains: Keras copies each
  batch to the device, on JAX one batch ahead); and Keras' train function called step
  after step with nothing read back in between (`device_training`: the rate the device
  allows, before Keras' per-step work). The loss before and after is reported, and a
  non-finite one marks the figure;
* inference frames/s end to end at each of `--infer-batches` and `--confidences`: uint8
  images in, the cast to float32 in the graph, `DecodeDetections` (in-graph NMS, top 200),
  detections copied to the host; and the latency of one image, on JAX also as one jitted
  function without `predict_on_batch` around it (Keras' share of the latency);
* forward frames/s at batch 8 (raw predictions, no decoding, images already on the
  device) in each precision, the outputs left on the device as in the peer's figure
  (`device_forward`), against torchvision's backbone and head; and through
  `predict_on_batch`, which copies each batch's 8 x 8,732 x 33 outputs to NumPy;
* the input pipeline: `SSDDataAugmentation` + the SSD300 encoder, images/s through
  `keras_dataset(use_multiprocessing=True)` with each of `--pipeline-workers` worker
  processes, from 500x375 JPEG files, to compare with the training rate; and as many
  independent processes building batches with no pool (what the host's cores allow);
* the peer, torchvision's ``ssd300_vgg16(weights=None, weights_backbone=None,
  num_classes=21)`` in its fastest settings (bfloat16 autocast, channels_last,
  cudnn.benchmark): training at the same batch (its loss includes its own box matching
  and hard negative mining), forward, end to end at batch 8 with its post-processing at
  the same thresholds (score 0.01, NMS 0.45, 200 detections), batch-1 latency;
* what slows a backend down: on JAX the compilations during timed runs (there should be
  none); on PyTorch with a GPU the Python lines where a step made PyTorch wait for the
  GPU (`torch.cuda.set_sync_debug_mode`), one training step, forward and end-to-end call
  each.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --json figures.json
    KERAS_BACKEND=torch python benchmarks/bench_gpu.py --peer off --jit-compile on

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
from ssd_keras.losses.ssd_loss import SSDLoss  # noqa: E402
from ssd_keras.models.presets import build, builder_kwargs, make_encoder  # noqa: E402
from ssd_keras.training.optimization import set_precision  # noqa: E402

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
    return (
        f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}" if gpus else "cpu"
    )


class Compilations:
    """Counts JAX's compilations (tracing and XLA) while timed runs go on; stays 0 on the
    other backends. A step compiled again per batch shows here. One per process (JAX
    listeners cannot be removed); `main` sets `timed` back to 0."""

    def __init__(self):
        self.events = 0
        self.timed = 0
        if keras.backend.backend() == "jax":
            import jax

            jax.monitoring.register_event_duration_secs_listener(self._event)

    def _event(self, event, seconds, **kwargs):
        if event.startswith("/jax/core/compile/"):
            self.events += 1


COMPILATIONS = Compilations()


def median_seconds(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    before = COMPILATIONS.events
    seconds = float(np.median(run_times(fn, repeats)))
    COMPILATIONS.timed += COMPILATIONS.events - before
    return seconds


def on_device(array):
    """`array` as a tensor of the backend, on its default device (the GPU when there is one)."""
    return keras.ops.convert_to_tensor(array)


def caller_outside_backend(stack):
    """The innermost frame of `stack` (from `traceback.extract_stack`) outside PyTorch,
    JAX and Keras' backend and ops modules, as 'path:line' with the path from site-packages
    or the project: the layer, loss or Keras part that asked for the operation."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(stack):
        path = frame.filename.replace(os.sep, "/")
        if not any(
            part in path for part in ("/torch/", "/jax/", "/keras/src/backend/", "/keras/src/ops/", "/warnings.py")
        ):
            short = path.split("site-packages/")[-1] if "site-packages/" in path else os.path.relpath(path, root)
            return f"{short}:{frame.lineno}"
    return "?"


def sync_sites(fn):
    """{'path:line': count} of the places where `fn()` made PyTorch wait for the GPU
    (blocking copies, reads of device values); None unless PyTorch runs on a GPU."""
    if keras.backend.backend() != "torch":
        return None
    import collections
    import traceback
    import warnings

    import torch

    if not torch.cuda.is_available():
        return None
    sites = collections.Counter()

    def show(message, *args, **kwargs):
        if "synchroniz" in str(message):
            sites[caller_outside_backend(traceback.extract_stack()[:-1])] += 1

    torch.cuda.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return dict(sites.most_common(30))


# ---------------------------------------------------------------- this project


def training(name, kwargs, precision, batch, steps, fit_steps, repeats, lr, jit_compile, rng):
    """The training figures in `precision` (see the module docstring), a dict."""
    set_precision(PRECISIONS[precision])
    try:
        keras.utils.set_random_seed(0)
        model, _ = build(name, kwargs)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
            loss=SSDLoss().compute_loss,
            jit_compile=jit_compile,
        )
        height, width = kwargs["image_size"][:2]
        images = rng.integers(0, 256, (batch, height, width, 3)).astype(np.float32)
        targets = make_encoder(name, model)(random_labels(rng, batch, kwargs["n_classes"], min(height, width)))
        device_images, device_targets = on_device(images), on_device(targets)
        losses = [float(model.train_on_batch(device_images, device_targets))]

        def run():
            for _ in range(steps):
                loss = model.train_on_batch(device_images, device_targets)
            losses.append(float(loss))  # the host reads the loss: the steps have run

        figures = dict(images_per_s=batch * steps / median_seconds(run, repeats))
        on_the_device = device_training(model, device_images, device_targets)
        figures["device_images_per_s"] = (
            batch * steps / median_seconds(lambda: losses.append(on_the_device(steps)), repeats)
        )
        if fit_steps:
            x, y = np.concatenate([images] * fit_steps), np.concatenate([targets] * fit_steps)

            def fit():
                history = model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
                losses.extend(history.history["loss"])

            figures["fit_images_per_s"] = len(x) / median_seconds(fit, repeats)
        figures.update(loss_first=losses[0], loss_last=losses[-1], finite=bool(np.all(np.isfinite(losses))))
        sites = sync_sites(lambda: model.train_on_batch(device_images, device_targets))
        if sites is not None:
            figures["sync_sites"] = sites
        return figures
    finally:
        set_precision("float32")


def device_training(model, images, targets):
    """`run(steps) -> loss`: `steps` training steps of the compiled `model` through the
    train function that `train_on_batch` uses, with nothing read back to the host between
    them (`train_on_batch` reads the loss, and on JAX assigns every variable, after each
    step): the rate the device allows before Keras' per-step work. `run` returns the mean
    loss of its steps, read once at the end; the model's variables hold the result, as
    after as many `train_on_batch` calls."""
    backend = keras.backend.backend()
    if not model.optimizer.built:  # `train_on_batch` and `fit` build it before their first step
        model.optimizer.build(model.trainable_variables)
    model.make_train_function()
    batch = (images, targets, None)
    if backend == "jax":
        groups = (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )

        def run(steps):
            model.jax_state_sync()
            model.reset_metrics()
            state = tuple([v.value for v in group] for group in groups)
            for _ in range(steps):
                logs, state = model.train_function(state, iter([batch]))  # donates `state`: no copies
            for group, values in zip(groups, state):
                for variable, value in zip(group, values):
                    variable.assign(value)
            return float(logs["loss"])

        return run

    def run(steps):
        model.reset_metrics()
        for _ in range(steps):
            logs = model.train_function([batch] if backend == "torch" else iter([batch]))
        return float(logs["loss"])

    return run


def detector(name, kwargs, confidence, jit_compile="auto"):
    """uint8 images in, decoded detections out (the cast happens in the graph), compiled
    with Keras' `jit_compile` for `predict_on_batch`."""
    model, _ = build(
        name, kwargs, "inference", confidence_thresh=confidence, iou_threshold=0.45, top_k=200, nms_max_output_size=400
    )
    inputs = keras.Input(tuple(kwargs["image_size"]), dtype="uint8")
    wrapped = keras.Model(inputs, model(keras.ops.cast(inputs, "float32")))
    wrapped.compile(jit_compile=jit_compile)
    return wrapped


def detector_latency(model, kwargs, batch, steps, repeats, rng):
    """ms per call of `ssd_keras.Detector`'s fastest runtime on this backend (JAX: one jitted
    call kept; PyTorch: the `torch.export` graph; TensorFlow: XLA) at `batch`: uint8 images
    from host memory in, detections on the host out."""
    from ssd_keras import Detector

    runner = Detector(model, confidence_thresh=0.01, top_k=200)
    height, width = kwargs["image_size"][:2]
    images = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)

    def run():
        for _ in range(steps):
            runner.predict_on_batch(images)

    return median_seconds(run, repeats, warmup=2) / steps * 1e3, runner.runtime


def profile_training(name, kwargs, batch, steps, lr, folder, rng, top=30):
    """JAX: a `jax.profiler` trace of `steps` bfloat16 training steps (the train function
    alone, on the device), and the `top` operations by their total time on the device,
    from the trace's Perfetto JSON: ``[{"name", "ms", "share", "count"}]``."""
    import glob
    import gzip

    import jax

    set_precision("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model, _ = build(name, kwargs)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.9), loss=SSDLoss().compute_loss)
        height, width = kwargs["image_size"][:2]
        images = on_device(rng.integers(0, 256, (batch, height, width, 3)).astype(np.float32))
        targets = on_device(
            make_encoder(name, model)(random_labels(rng, batch, kwargs["n_classes"], min(height, width)))
        )
        model.train_on_batch(images, targets)
        run = device_training(model, images, targets)
        run(2)  # compiled and warm
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            run(steps)
    finally:
        set_precision("float32")
    [path] = glob.glob(os.path.join(folder, "**", "perfetto_trace.json.gz"), recursive=True)
    with gzip.open(path, "rt") as f:
        trace = json.load(f)
    return summarize_trace(trace, top)


def summarize_trace(trace, top=30):
    """The `top` event names of a Perfetto/Chrome trace by total duration on the device's
    threads (those whose process or thread name says GPU, TPU or a stream; on a CPU-only
    trace every thread), with their share of that total."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {}
    for event in events:
        if event.get("ph") == "M" and event.get("name") in ("process_name", "thread_name"):
            names[(event.get("pid"), event.get("tid") if event["name"] == "thread_name" else None)] = str(
                event.get("args", {}).get("name", "")
            )

    def on_device(event):
        label = names.get((event.get("pid"), None), "") + " " + names.get((event.get("pid"), event.get("tid")), "")
        return any(word in label for word in ("GPU", "gpu", "TPU", "Stream", "stream", "/device:"))

    timed = [e for e in events if e.get("ph") == "X" and "dur" in e]
    device = [e for e in timed if on_device(e)] or timed
    totals, counts = {}, {}
    for event in device:
        totals[event["name"]] = totals.get(event["name"], 0.0) + float(event["dur"])
        counts[event["name"]] = counts.get(event["name"], 0) + 1
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [dict(name=n, ms=round(us / 1e3, 3), share=round(us / whole, 4), count=counts[n]) for n, us in ranked]


def inference(model, kwargs, batch, steps, repeats, rng):
    """(frames/s end to end, ms per call, sync sites or None) at `batch`: uint8 images
    from host memory in, detections on the host out."""
    height, width = kwargs["image_size"][:2]
    images = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)

    def call():
        return np.asarray(model.predict_on_batch(images))  # detections on the host

    def run():
        for _ in range(steps):
            call()

    seconds = median_seconds(run, repeats, warmup=2) / steps
    return batch / seconds, seconds * 1e3, sync_sites(call)


def bare_latency(model, kwargs, steps, repeats, rng):
    """JAX only: ms per call at batch 1 of the model as one jitted function of its
    variables (`stateless_call`), uint8 images in and detections on the host out, without
    `predict_on_batch` around it: what Keras' per-call work costs is the difference."""
    call, _ = device_forward(model)
    height, width = kwargs["image_size"][:2]
    images = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)

    def run():
        for _ in range(steps):
            np.asarray(call(images))

    return median_seconds(run, repeats, warmup=2) / steps * 1e3


def device_forward(model):
    """``(call, wait)``: `call(images)` runs `model` in inference mode and leaves its
    outputs on the device, as torchvision's forward in the peer does; `wait(outputs)`
    returns once they are computed. JAX: one jitted function of the variables (what
    `predict_on_batch` compiles, without its copy of the outputs to NumPy); PyTorch and
    TensorFlow: the model called under no gradient tape, on PyTorch through
    `torch.compile` when the model was compiled with ``jit_compile=True``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jitted = jax.jit(lambda trainable, other, images: model.stateless_call(trainable, other, images)[0])

        def call(images):  # the variables' current arrays: Keras' own steps replace them
            return jitted(
                [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], images
            )

        return call, jax.block_until_ready
    if backend == "torch":
        import torch

        run = lambda images: model(images, training=False)  # noqa: E731
        if getattr(model, "jit_compile", False) is True:
            run = torch.compile(run)

        def call(images):
            with torch.no_grad():
                return run(images)

        def wait(outputs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        return call, wait
    return (lambda images: model(images, training=False)), keras.ops.convert_to_numpy


def forward(name, kwargs, precision, batch, steps, repeats, rng, jit_compile="auto"):
    """(frames/s of the raw forward pass in `precision` with its outputs left on the
    device, frames/s through `predict_on_batch`, which copies them to NumPy, sync sites or
    None): images already on the device, no decoding."""
    set_precision(PRECISIONS[precision])
    try:
        keras.utils.set_random_seed(0)
        model, _ = build(name, kwargs)
        model.compile(jit_compile=jit_compile)
        height, width = kwargs["image_size"][:2]
        images = on_device(rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32))
        call, wait = device_forward(model)

        def on_the_device():
            for _ in range(steps):
                out = call(images)
            wait(out)

        def to_numpy():
            for _ in range(steps):
                model.predict_on_batch(images)

        rate = batch * steps / median_seconds(on_the_device, repeats, warmup=2)
        host_rate = batch * steps / median_seconds(to_numpy, repeats, warmup=2)
        return rate, host_rate, sync_sites(lambda: wait(call(images)))
    finally:
        set_precision("float32")


def pipeline(workers, n_images, batch, repeats):
    """(images/s of the SSD300 training chain and encoder through `keras_dataset` with
    `workers` worker processes, images/s of as many independent processes that each build
    batches on their own): the second is what the host allows with no pool, no slots and
    no parent in the way; the pool falling short of it points at the pool, both flat
    with more processes at the host (cores, memory bandwidth)."""
    from benchmarks.bench_core import SSD300_VOC
    from benchmarks.bench_data import independent_builders, write_dataset
    from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
    from ssd_keras.encoding.input_encoder import SSDInputEncoder

    encoder = SSDInputEncoder(
        **SSD300_VOC
    )  # the model's anchors without building it (16 s of compilation under JAX on a CPU)
    height, width = SSD300_VOC["img_height"], SSD300_VOC["img_width"]
    with tempfile.TemporaryDirectory() as folder:
        dataset = write_dataset(folder, n_images, np.random.default_rng(0))
        data = dataset.keras_dataset(
            batch,
            transformations=[SSDDataAugmentation(height, width)],
            label_encoder=encoder,
            workers=workers,
            use_multiprocessing=True,
            seed=0,
        )
        data[0]  # starts the workers
        # Whole passes, together at least 3x the batches the workers build ahead (at most
        # max(workers, 10)): batches built ahead while a run waited (for the workers to
        # start, say) are then a small part of the next run.
        passes = -(-3 * max(workers, 10) // len(data))

        def run():
            for _ in range(passes):
                for i in range(len(data)):
                    data[i]
                data.on_epoch_end()

        rate = (
            passes * len(data) * batch / median_seconds(run, repeats)
        )  # the warm-up run waits for the workers to start
        data.close()
        independent = independent_builders(
            data, workers, max(2, passes * len(data) // workers)
        )  # about the pool's batches
    return rate, independent


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
    model = (
        ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
        .to(device)
        .to(memory_format=torch.channels_last)
    )

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    images = torch.as_tensor(rng.integers(0, 256, (batch, 3, 300, 300), dtype=np.uint8), device=device)
    labels = random_labels(rng, batch, 20, 300)
    targets = [
        {
            "boxes": torch.as_tensor(np.asarray(rows)[:, 1:], dtype=torch.float32, device=device),
            "labels": torch.as_tensor(np.asarray(rows)[:, 0], dtype=torch.int64, device=device),
        }
        for rows in labels
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    losses = []

    def train_steps():
        for _ in range(steps):
            with torch.autocast(**autocast):
                loss = sum(
                    model(list(images.float().div(255).contiguous(memory_format=torch.channels_last)), targets).values()
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        losses.append(float(loss.detach()))
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
    parser.add_argument(
        "--model", default="ssd300", choices=("ssd300", "ssd512", "ssd7"), help="model (default ssd300)"
    )
    parser.add_argument("--image-size", type=int, help="square input size (default: the model's)")
    parser.add_argument("--train-batch", type=int, default=32, help="training batch (default 32)")
    parser.add_argument(
        "--precisions",
        default="bfloat16,float32",
        help="precisions of the training and forward cases: bfloat16, float32, float16 (default bfloat16,float32)",
    )
    parser.add_argument(
        "--fit-steps", type=int, default=30, help="steps of each timed `fit` (default 30; 0: no fit case)"
    )
    parser.add_argument("--infer-batches", default="1,8", help="inference batch sizes (default 1,8)")
    parser.add_argument("--confidences", default="0.01,0.5", help="decoding confidence thresholds (default 0.01,0.5)")
    parser.add_argument("--lr", type=float, default=1e-4, help="SGD learning rate of the training case (default 1e-4)")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="Keras' jit_compile (on: torch.compile on the torch backend; default auto)",
    )
    parser.add_argument(
        "--pipeline-workers", default="4,8,14", help="worker processes of the input pipeline case, or none"
    )
    parser.add_argument(
        "--pipeline-images", type=int, default=512, help="JPEG files of the input pipeline case (default 512)"
    )
    parser.add_argument(
        "--pipeline-batch", type=int, default=32, help="batch size of the input pipeline case (default 32)"
    )
    parser.add_argument(
        "--peer",
        choices=("auto", "on", "off", "only"),
        default="auto",
        help="run torchvision's SSD300 too (auto: when torchvision imports; only: nothing else)",
    )
    parser.add_argument(
        "--detector-batches", default="none", help="batch sizes of the Detector latency case (e.g. 1,8; default none)"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="JAX: trace the bfloat16 training step with jax.profiler into DIR and record its top operations",
    )
    parser.add_argument(
        "--only",
        default="all",
        help="comma-separated cases to run: train, forward, end_to_end, detector, pipeline, profile (default all)",
    )
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    name = args.model
    kwargs = builder_kwargs(name, 20, None if args.image_size is None else (args.image_size, args.image_size, 3))
    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    rng = np.random.default_rng(0)
    COMPILATIONS.timed = 0
    if keras.backend.backend() == "torch":
        import torch

        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels, as for the peer
    figures = {
        "device": device_name(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "model": name,
        "image_size": list(kwargs["image_size"][:2]),
        "train_batch": args.train_batch,
        "steps": args.steps,
        "repeats": args.repeats,
    }
    print(
        f"{name} {kwargs['image_size'][0]}x{kwargs['image_size'][1]} on {figures['device']}, Keras {keras.__version__} "
        f"({figures['backend']}); medians of {args.repeats} runs of {args.steps} steps",
        flush=True,
    )

    def record(key, value, text):
        figures[key] = value
        print(text, flush=True)
        if args.json:  # written as it goes: a run cut short keeps what it measured
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)

    def with_sites(values, sites):
        return values if sites is None else dict(values, sync_sites=sites)

    if args.peer != "off":  # first: a run cut short by its time limit still has the comparison
        peer = torchvision_peer(args.train_batch, 8, args.steps, args.repeats, args.lr, rng)
        record(
            "torchvision",
            peer,
            "torchvision ssd300_vgg16: "
            + json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in peer.items()}),
        )
        if args.peer in ("on", "only") and "skipped" in peer:
            raise SystemExit(f"--peer {args.peer}: {peer['skipped']}")
        if args.peer == "only":
            return figures
    precisions = args.precisions.split(",")
    only = set(args.only.split(",")) if args.only != "all" else None

    def wanted(case):
        return only is None or case in only

    for precision in precisions if wanted("train") else ():
        case = training(
            name, kwargs, precision, args.train_batch, args.steps, args.fit_steps, args.repeats, args.lr, jit, rng
        )
        fit = f", fit from host arrays {case['fit_images_per_s']:.1f}" if "fit_images_per_s" in case else ""
        record(
            f"train_{precision}",
            case,
            f"training, batch {args.train_batch}, {precision:9s} {case['images_per_s']:9.1f} images/s"
            f"{fit} (loss {case['loss_first']:.3f} -> {case['loss_last']:.3f})",
        )
    for precision in precisions if wanted("forward") else ():
        rate, host_rate, sites = forward(name, kwargs, precision, 8, args.steps, args.repeats, rng, jit)
        record(
            f"forward_batch8_{precision}",
            with_sites(dict(frames_per_s=rate, predict_on_batch_frames_per_s=host_rate), sites),
            f"forward, batch 8, raw output, {precision:9s} {rate:9.1f} frames/s on the device, "
            f"{host_rate:.1f} through predict_on_batch (copied to NumPy)",
        )
    for confidence in (float(c) for c in args.confidences.split(",")) if wanted("end_to_end") else ():
        model = detector(name, kwargs, confidence, jit)
        for batch in _ints(args.infer_batches):
            fps, ms, sites = inference(model, kwargs, batch, args.steps, args.repeats, rng)
            case, bare = with_sites(dict(frames_per_s=fps, ms=ms), sites), ""
            if batch == 1 and keras.backend.backend() == "jax":
                case["bare_jit_ms"] = bare_latency(model, kwargs, args.steps, args.repeats, rng)
                bare = f" (one jitted call without predict_on_batch: {case['bare_jit_ms']:.2f} ms)"
            record(
                f"end_to_end_batch{batch}_conf{confidence}",
                case,
                f"end to end, batch {batch:<2d}, confidence {confidence:<5}  {fps:9.1f} frames/s, {ms:7.2f} ms per "
                f"call{bare}",
            )
    if wanted("detector") and _ints(args.detector_batches):
        model, _ = build(name, kwargs, "inference")
        for batch in _ints(args.detector_batches):
            ms, runtime = detector_latency(model, kwargs, batch, args.steps, args.repeats, rng)
            record(
                f"detector_batch{batch}",
                dict(ms=ms, frames_per_s=batch * 1e3 / ms, runtime=runtime),
                f"Detector ({runtime}), batch {batch:<2d}, uint8 in, detections on the host  {ms:7.2f} ms per call",
            )
    if args.profile and wanted("profile") and keras.backend.backend() == "jax":
        top = profile_training(name, kwargs, args.train_batch, args.steps, args.lr, args.profile, rng)
        record(
            "profile_train_bfloat16",
            top,
            "training step profile (bfloat16), top operations on the device:\n"
            + "\n".join(
                f"  {row['share']:6.1%} {row['ms']:9.2f} ms  x{row['count']:<5d} {row['name'][:90]}" for row in top[:15]
            ),
        )
    for workers in _ints(args.pipeline_workers) if wanted("pipeline") else ():
        rate, alone = pipeline(workers, args.pipeline_images, args.pipeline_batch, max(1, min(args.repeats, 3)))
        figures[f"independent_{workers}_processes"] = alone
        record(
            f"pipeline_{workers}_workers",
            rate,
            f"input pipeline (SSD300 chain + encoder), {workers:2d} processes {rate:9.1f} images/s "
            f"({alone:.1f} from as many independent processes)",
        )
    if keras.backend.backend() == "jax":
        record(
            "compilations_while_timed", COMPILATIONS.timed, f"JAX compilations during timed runs: {COMPILATIONS.timed}"
        )
    return figures


if __name__ == "__main__":
    main()
