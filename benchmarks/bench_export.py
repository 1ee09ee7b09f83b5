"""Serving latency and accuracy of the exported detectors against Keras, in one run.

For SSD300 (Pascal VOC, 21 classes, random weights with calm heads) and the demo's SSD7
(128x128, trained, `tests/fixtures/ssd7_shapes_demo.keras`), at batch 1 and 8, uint8 images
in and decoded detections out (the display decoding: confidence 0.5, NMS 0.45, top 200):

* **Keras predict**: ``model.predict_on_batch`` of the decoding model, on each backend;
* **Detector (keras-...)**: `ssd_keras.Detector`'s Keras runtime on each backend;
* **onnxruntime fp32 / int8**: the ONNX file exported from each backend, and its INT8 copy
  (static quantisation of the convolutions, calibrated on 64 training images of the demo);
* **TFLite fp32 / int8** (dynamic range), from the TensorFlow backend.

Each backend runs in a process of its own. Medians of repeated calls after a warm-up, in
ms. Then the demo model's VOC mAP (11-point, decoding at 0.01) on the demo's 120 held-out
images for Keras, onnxruntime fp32 and int8, TFLite fp32 and int8. Last, the floor that
the CPU puts under any float32 runtime: SSD300's convolutions counted in floating-point
operations, over the rate of onnxruntime's float32 matrix product (2048 x 2048) here.

    python benchmarks/bench_export.py [--repeats 20] [--results DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import results  # noqa: E402
from benchmarks.bench_core import run_times  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
DEMO_MODEL = os.path.join(ROOT, "tests", "fixtures", "ssd7_shapes_demo.keras")
MODELS = ("ssd300", "ssd7")
BATCHES = (1, 8)
SHAPES = ["background", "circle", "rectangle", "triangle"]


def _data(folder):
    """The demo's data set (800 training, 120 held-out images, seed 0): the demo model's."""
    from ssd_keras.data.synthetic_shapes import make_shapes_dataset

    return make_shapes_dataset(os.path.join(folder, "shapes"), 800, 120, seed=0, verbose=False)


def _split(info, split):
    from ssd_keras.data.loading import load_dataset

    return load_dataset(
        "voc", [info["images_dir"]], [info[split]], [info["annotations_dir"]], classes=SHAPES, verbose=False
    )


def _int8_onnx(model, onnx_file, info, size):
    """The INT8 copy of `onnx_file`, calibrated on 64 images of the training split."""
    from ssd_keras.export import export_model
    from ssd_keras.export.quantize import calibration_images

    calibration = calibration_images(_split(info, "trainval"), size, limit=64)
    return export_model(model, onnx_file.replace(".onnx", "_int8.onnx"), "onnx", int8=True, calibration=calibration)


def _models(folder):
    """``{name: decoding Keras model}``; SSD300's calm random weights are written once (by
    the first backend) and loaded by the others, so every backend times the same model."""
    import keras

    from ssd_keras.inference.loading import load_detector
    from ssd_keras.models.files import save_model
    from ssd_keras.models.presets import build, builder_kwargs

    path = os.path.join(folder, "ssd300.keras")
    if not os.path.exists(path):
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        from conftest import calm_heads

        keras.utils.set_random_seed(0)
        model, _ = build("ssd300", builder_kwargs("ssd300", 20), mode="training")
        calm_heads(model, np.random.default_rng(0).integers(0, 256, (2, 300, 300, 3)))
        save_model(model, path)
    return {name: load_detector(file) for name, file in (("ssd300", path), ("ssd7", DEMO_MODEL))}


def conv_gflop(model):
    """Floating-point operations (2 per multiply-add, in billions) of the model's `Conv2D`
    layers for one image: ``2 * output height * width * filters * kernel h * w * channels``."""
    import keras

    flop = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w, channels, _ = layer.kernel.shape
            flop += 2 * height * width * filters * kernel_h * kernel_w * channels
    return flop / 1e9


def matmul_gflops(n=2048, repeats=10):
    """onnxruntime's float32 rate on an n x n matrix product, GFLOP/s (median of `repeats`)."""
    from onnx import TensorProto, helper

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "ABC"]
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = _onnx_session(model.SerializeToString())
    a, b = np.random.default_rng(0).random((2, n, n), dtype=np.float32)
    seconds = np.median(run_times(lambda: session.run(None, {"A": a, "B": b}), repeats, warmup=3))
    return 2 * n**3 / seconds / 1e9


def _images(size, batch, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *size, 3)).astype(np.uint8)


def _median_ms(fn, repeats):
    return float(np.median(run_times(fn, repeats, warmup=2)) * 1e3)


def _onnx_session(path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class _TFLite:
    """A TFLite file with `predict_on_batch`, for `evaluate_voc`."""

    def __init__(self, path):
        from ssd_keras.export.saved_model import tflite_interpreter

        self.runner = tflite_interpreter(path).get_signature_runner("serve")

    def predict_on_batch(self, images):
        return next(iter(self.runner(images=np.asarray(images, np.uint8)).values()))


def worker(backend, folder, repeats):
    """Times everything of one backend; writes ``<folder>/<backend>.json``."""
    import keras

    from ssd_keras import Detector
    from ssd_keras.export import export_model
    from ssd_keras.models.decoding import add_decoding

    info = _data(folder)
    rows = []
    models = _models(folder)
    gflop = {name: conv_gflop(model) for name, model in models.items()}
    for name, model in models.items():
        size = tuple(int(n) for n in model.inputs[0].shape[1:3])
        model = add_decoding(model)  # the display decoding, as the Detector's default
        detector = Detector(model)
        onnx_file = export_model(model, os.path.join(folder, f"{name}_{backend}.onnx"), "onnx")
        int8_file = _int8_onnx(model, onnx_file, info, size)
        runners = {
            f"Keras predict_on_batch ({backend})": lambda x, m=model: m.predict_on_batch(x.astype(np.float32)),
            f"Detector ({detector.runtime})": detector.predict_on_batch,
        }
        for kind, path in (("fp32", onnx_file), ("int8", int8_file)):
            session = _onnx_session(path)
            runners[f"onnxruntime {kind} (exported from {backend})"] = lambda x, s=session: s.run(None, {"images": x})
        if backend == "tensorflow":
            for kind, int8 in (("fp32", False), ("int8", True)):
                path = export_model(model, os.path.join(folder, f"{name}_{kind}.tflite"), "tflite", int8=int8)
                runners[f"TFLite {kind}"] = _TFLite(path).predict_on_batch
        for batch in BATCHES:
            images = _images(size, batch)
            n = repeats if batch == 1 else max(3, repeats // 3)
            for label, run in runners.items():
                rows.append([name, batch, label, _median_ms(lambda r=run, x=images: r(x), n)])
    accuracy = _accuracy(backend, info, folder)
    with open(os.path.join(folder, f"{backend}.json"), "w") as f:
        json.dump(dict(rows=rows, accuracy=accuracy, gflop=gflop, versions=results.machine()["versions"]), f)
    print(f"{backend}: done ({keras.backend.backend()})", flush=True)


def _accuracy(backend, info, folder):
    """The demo model's VOC mAP on the held-out split through each runtime of this backend."""
    from ssd_keras import Detector
    from ssd_keras.encoding.decoding_config import DECODING
    from ssd_keras.evaluation.metrics import evaluate_voc
    from ssd_keras.export import export_model
    from ssd_keras.inference.loading import load_detector

    test = _split(info, "test")
    model = load_detector(DEMO_MODEL, **DECODING.as_kwargs())
    runtimes = {}
    if backend == "tensorflow":
        runtimes["Keras"] = model
        for kind, int8 in (("fp32", False), ("int8", True)):
            path = export_model(model, os.path.join(folder, f"ssd7_eval_{kind}.tflite"), "tflite", int8=int8)
            runtimes[f"TFLite {kind}"] = _TFLite(path)
    # The files timed above decode at 0.5; the evaluation's decode at 0.01.
    onnx_file = export_model(model, os.path.join(folder, f"ssd7_eval_{backend}.onnx"), "onnx")
    int8_file = _int8_onnx(model, onnx_file, info, (128, 128))
    runtimes[f"onnxruntime fp32 (exported from {backend})"] = Detector(onnx_file, **DECODING.as_kwargs())
    runtimes[f"onnxruntime int8 (exported from {backend})"] = Detector(int8_file, **DECODING.as_kwargs())
    return [
        [name, round(evaluate_voc(runner, test, 3, 128, 128, batch_size=8, verbose=False)["mAP"], 4)]
        for name, runner in runtimes.items()
    ]


def _goals(rows, accuracy):
    """The goals of the Performance page, met or not, from the rows."""

    def best(prefix, model="ssd300", batch=1):
        return min(ms for m, b, case, ms in rows if m == model and b == batch and case.startswith(prefix))

    keras_ms = best("Keras predict_on_batch")
    fp32, int8 = best("onnxruntime fp32"), best("onnxruntime int8")
    float_map = dict(accuracy)["Keras"]
    worst_int8 = max(abs(value - float_map) for name, value in accuracy if "int8" in name)
    return [
        [
            "SSD300 b1: onnxruntime fp32 vs fastest Keras predict",
            f"{keras_ms / fp32:.2f}x",
            ">= 1.5x",
            keras_ms / fp32 >= 1.5,
        ],
        [
            "SSD300 b1: onnxruntime int8 vs fastest Keras predict",
            f"{keras_ms / int8:.2f}x",
            ">= 3x",
            keras_ms / int8 >= 3,
        ],
        ["demo mAP: largest int8 difference from Keras float", f"{worst_int8:.4f}", "<= 0.01", worst_int8 <= 0.01],
    ]


def _fp32_floor(rows, gflop, gflops):
    """The shortest time any float32 runtime can take for SSD300's convolutions here, next to
    what the goal (1.5x the fastest Keras predict at batch 1) asks of onnxruntime."""
    keras_ms = min(ms for m, b, case, ms in rows if m == "ssd300" and b == 1 and case.startswith("Keras predict"))
    onnx_ms = min(ms for m, b, case, ms in rows if m == "ssd300" and b == 1 and case.startswith("onnxruntime fp32"))
    return [
        ["SSD300 convolutions, one image (GFLOP)", round(gflop, 1)],
        ["float32 matrix product in onnxruntime on this CPU (GFLOP/s)", round(gflops)],
        ["those convolutions at that rate (ms)", round(gflop / gflops * 1e3, 1)],
        ["onnxruntime float32, whole model with decoding (ms)", round(onnx_ms, 1)],
        ["the goal: the fastest Keras predict / 1.5 (ms)", round(keras_ms / 1.5, 1)],
    ]


def main(argv=None):
    """Runs a worker per backend, then prints (and saves) the tables and the goals."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls at batch 1 (a third at batch 8)")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    results.add_argument(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.dir, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench_export_") as folder:
        rows, accuracy, versions, gflop = [], [], {}, {}
        for backend in BACKENDS:
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
            command = [sys.executable, os.path.abspath(__file__), "--worker", backend, "--dir", folder]
            subprocess.run([*command, "--repeats", str(args.repeats)], check=True, env=env)
            with open(os.path.join(folder, f"{backend}.json")) as f:
                part = json.load(f)
            rows += part["rows"]
            accuracy += part["accuracy"]
            gflop.update(part["gflop"])  # the same counts from every backend
            versions.update(part["versions"])
    rows.sort(key=lambda row: (MODELS.index(row[0]), row[1], row[3]))
    print(f"{'model':8s} {'batch':>5s}  {'runtime':52s} {'median ms':>10s}")
    for model, batch, case, ms in rows:
        print(f"{model:8s} {batch:5d}  {case:52s} {ms:10.2f}")
    print(f"\n{'demo SSD7, held-out VOC mAP':60s}")
    for name, value in accuracy:
        print(f"{name:60s} {value:.4f}")
    goals = _goals(rows, accuracy)
    floor = _fp32_floor(rows, gflop["ssd300"], matmul_gflops())
    print()
    for quantity, value in floor:
        print(f"{quantity:70s} {value:8.1f}")
    print()
    for goal, value, target, met in goals:
        print(f"{goal:60s} {value:>8s} (goal {target}): {'met' if met else 'NOT met'}")
    notes = (
        f"uint8 images in, detections out (display decoding 0.5); medians of {args.repeats} calls at batch 1, "
        f"{max(3, args.repeats // 3)} at batch 8, after 2 warm-up calls; each backend in its own process; "
        f"versions {versions}"
    )
    table = [[m, b, c, round(ms, 2)] for m, b, c, ms in rows]
    title = "Serving latency: Keras, Detector, onnxruntime, TFLite (ms)"
    results.save(args, "bench_export", title, ["model", "batch", "runtime", "median ms"], table, notes)
    title = "The demo SSD7's held-out VOC mAP on each runtime (decoding at 0.01)"
    notes = "the demo's 120 held-out images; INT8 ONNX calibrated on 64 training images"
    results.save(args, "bench_export_accuracy", title, ["runtime", "mAP"], accuracy, notes)
    columns = ["goal", "measured", "target", "met"]
    results.save(args, "bench_export_goals", "Export goals on this CPU", columns, goals, "from the two tables above")
    title = "What this CPU allows SSD300 in float32 at batch 1"
    notes = "the matrix product: onnxruntime MatMul, 2048 x 2048, float32, median of 10 after 3 warm-up calls"
    results.save(args, "bench_export_floor", title, ["quantity", "value"], floor, notes)
    return rows, accuracy, goals


if __name__ == "__main__":
    main()
