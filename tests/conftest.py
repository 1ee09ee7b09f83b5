import contextlib
import os
import subprocess
import sys
import tempfile

# The backend is fixed when Keras is first imported: `make test` runs the suite once under
# TensorFlow, then the tests marked `backends` again with KERAS_BACKEND=jax and =torch.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# `ssd-keras` under JAX keeps compiled programs in the user's cache folder unless told where:
# the tests' runs keep them in the temporary folder (`make test` names a folder of its own).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "ssd_keras_tests_jax_cache"))
BACKEND = os.environ["KERAS_BACKEND"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The tests import the packages from the checkout and the reference module from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssd_keras.utils.backend import hide_tensorflow_start_up_lines  # noqa: E402

hide_tensorflow_start_up_lines()  # as `ssd-keras` does; before anything imports Keras

from ssd_keras.models import presets  # noqa: E402

# A feature of TensorFlow's own (tf.distribute, SavedModel, TFLite): skipped under the other backends.
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow feature")


# Keras 2 names: trainable weights then non-trainable ones.
KERAS2_NAMES = {
    "Conv2D": ["kernel:0", "bias:0"],
    "BatchNormalization": ["gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"],
}
# The layers the original builds as `Lambda`s of its own nested functions.
KERAS2_LAMBDAS = ("identity_layer", "input_mean_normalization", "input_stddev_normalization", "input_channel_swap")


def _keras2_model_config(model):
    """A Keras-2.1 ``model_config`` of `model`'s graph, as ssd_keras' ``ModelCheckpoint`` wrote it:
    its preprocessing layers are `Lambda`s whose function is marshalled bytecode of the Python
    that saved it (here bytes that no Python 3.11 reads), the other layers keep their class name."""
    bytecode = "4wEAAAAAAAAAAQAAAAEAAABTAAAAcwQAAAB8AFMAKQFOqQA="
    layers = []
    for layer in model.layers:
        inbound = (
            []
            if not layer._inbound_nodes
            else [
                [[tensor._keras_history.operation.name, 0, 0, {}] for tensor in layer._inbound_nodes[0].input_tensors]
            ]
        )
        if type(layer).__name__ == "InputLayer":
            config = {
                "batch_input_shape": [None, *layer.output.shape[1:]],
                "dtype": "float32",
                "sparse": False,
                "name": layer.name,
            }
            entry = {"name": layer.name, "class_name": "InputLayer", "config": config, "inbound_nodes": []}
        elif layer.name in KERAS2_LAMBDAS:
            config = {
                "name": layer.name,
                "trainable": True,
                "function": [bytecode, None, None],
                "function_type": "lambda",
                "output_shape": list(layer.output.shape[1:]),
                "output_shape_type": "raw",
                "arguments": {},
            }
            entry = {"name": layer.name, "class_name": "Lambda", "config": config, "inbound_nodes": inbound}
        else:
            entry = {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "config": {"name": layer.name, "trainable": True},
                "inbound_nodes": inbound,
            }
        layers.append(entry)
    outputs = [[tensor._keras_history.operation.name, 0, 0] for tensor in model.outputs]
    return {
        "class_name": "Model",
        "config": {
            "name": model.name,
            "layers": layers,
            "input_layers": [[model.layers[0].name, 0, 0]],
            "output_layers": outputs,
        },
    }


def write_keras2_weights(path, model, skip=(), extra=None, whole_model=False):
    """Writes `model`'s weights the way Keras 2.1's `save_weights` did (h5py only); with
    `whole_model`, as its `model.save` did: the weights in group ``model_weights``, the graph
    in attribute ``model_config`` (see `_keras2_model_config`)."""
    import json

    import h5py

    with h5py.File(path, "w") as root:
        f = root
        if whole_model:
            root.attrs["keras_version"] = b"2.1.6"
            root.attrs["backend"] = b"tensorflow"
            root.attrs["model_config"] = json.dumps(_keras2_model_config(model)).encode()
            f = root.create_group("model_weights")
        layers = [layer for layer in model.layers if layer.name not in skip]
        names = [layer.name for layer in layers] + list(extra or {})
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for layer in layers:
            group = f.create_group(layer.name)
            values = [np.asarray(w) for w in layer.trainable_weights + layer.non_trainable_weights]
            short = KERAS2_NAMES.get(type(layer).__name__, [f"{layer.name}_gamma:0"])  # L2Normalization's K.variable
            weight_names = [f"{layer.name}/{short[i]}" for i in range(len(values))]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
            for name, value in zip(weight_names, values):
                group.create_dataset(name, data=value)
        for name, values in (extra or {}).items():
            group = f.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/w{i}:0".encode() for i in range(len(values))])
            for i, value in enumerate(values):
                group.create_dataset(f"{name}/w{i}:0", data=value)


FAULT_INJECTION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_injection")


def fault_env(fault):
    """Environment variables that plant `fault` (``"kill-at-step:6"``...) in a new Python
    process, the installed ``ssd-keras`` included (see ``fault_injection/sitecustomize.py``)."""
    return {
        "SSD_KERAS_FAULT": fault,
        "PYTHONPATH": os.pathsep.join([FAULT_INJECTION, os.environ.get("PYTHONPATH", "")]),
    }


def run_under(backend, argv, env=None, timeout=600, check=True):
    """Runs ``python argv...`` in a fresh process with Keras on `backend`; returns the
    `subprocess.CompletedProcess` (stdout, stderr as text). The one way the tests run a
    check under a backend other than this process's, which is fixed at import."""
    environment = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(
            [ROOT, os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")]
        ),
    )
    environment.update(env or {})
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=environment)
    if check:
        assert result.returncode == 0, (
            f"{backend}: {' '.join(argv)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result


def compiled(fn):
    """`fn` traced and compiled by the backend (tf.function, jax.jit); PyTorch runs it eagerly."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


# The SSD300 Pascal VOC configuration of the original notebooks, as `SSDInputEncoder` arguments.
SSD300_VOC = presets.encoder_kwargs("ssd300_voc")
SSD300_PREDICTOR_SIZES = [tuple(size) for size in SSD300_VOC["predictor_sizes"]]
SSD300_AR = SSD300_VOC["aspect_ratios_per_layer"]


def random_labels(rng, n_images, n_classes, height, width, max_boxes=6, min_boxes=0):
    """Seeded ground truth: per image min_boxes..max_boxes boxes of varied size and shape."""
    labels = []
    for _ in range(n_images):
        k = int(rng.integers(min_boxes, max_boxes + 1))
        w = rng.uniform(0.05, 0.9, k) * width
        h = rng.uniform(0.05, 0.9, k) * height
        xmin = rng.uniform(0, width - w)
        ymin = rng.uniform(0, height - h)
        labels.append(np.column_stack([rng.integers(1, n_classes + 1, k), xmin, ymin, xmin + w, ymin + h]))
    return labels


def pytest_collection_modifyitems(items):
    """The tests marked `slow` (10 s or more: mostly fresh processes) run first. `make test`
    has pytest-xdist hand them out one at a time in this order (--maxschedchunk 1), so the
    long ones spread over the workers at the start and short ones fill the end, instead of
    one worker finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _preset_model(name):
    def build():
        from ssd_keras.models.presets import builder

        return builder(presets.get(name).architecture)(**presets.model_kwargs(name))

    return build


# The models of the original notebooks (Pascal VOC SSD300/SSD512, Udacity SSD7).
DEFAULT_MODELS = {name: _preset_model(name) for name in ("ssd300_voc", "ssd512_voc", "ssd7_udacity")}


def calm_heads(model, images):
    """Scales the prediction heads of a randomly initialised SSD (in place) to what a trained
    model gives: class logits of spread 1.5, box offsets of spread 0.5, on `images`.

    Random heads give saturated scores (many exactly 1.0, whose order is a tie) and boxes
    that explode; comparisons of decoded detections between runtimes need neither."""
    import re

    import keras

    heads = [layer for layer in model.layers if re.search(r"(_mbox_conf|_mbox_loc|^classes\d+|^boxes\d+)$", layer.name)]
    features = keras.Model(model.inputs[0], [layer.input for layer in heads]).predict(
        np.asarray(images, np.float32), verbose=0
    )
    for layer, feature in zip(heads, features):
        kernel, bias = layer.get_weights()
        centre = kernel[kernel.shape[0] // 2, kernel.shape[1] // 2]
        spread = np.std(np.tensordot(feature[0], centre, axes=1))
        classes = layer.name.endswith("conf") or layer.name.startswith("classes")
        layer.set_weights([kernel / spread * (1.5 if classes else 0.5), bias])


def detection_rows(detections):
    """The detections of one image as float64 rows (those of confidence > 0, from a padded
    ``(top_k, 6)`` output, or a `decode_detections` list entry)."""
    rows = np.asarray(detections, dtype=np.float64).reshape(-1, 6)
    return rows[rows[:, 1] > 0]


def assert_same_detections(actual, expected, score_atol=1e-5, box_atol=1e-3):
    """Asserts that two batches of decoded detections hold the same rows: per image the
    same number, each row of `expected` matched by one of `actual` of the same class with
    its score within `score_atol` and its coordinates within `box_atol` pixels, and
    `actual` sorted by score. Rows are matched by content, not position: detections whose
    scores tie (within `score_atol`) may come in either order."""
    assert len(actual) == len(expected)
    for image, (got, want) in enumerate(zip(actual, expected)):
        got, want = detection_rows(got), detection_rows(want)
        assert len(got) == len(want), f"image {image}: {len(got)} detections, expected {len(want)}"
        assert np.all(np.diff(got[:, 1]) <= score_atol), f"image {image}: not sorted by score"
        free = np.ones(len(got), bool)
        for row in want:
            fits = (
                free
                & (got[:, 0] == row[0])
                & (np.abs(got[:, 1] - row[1]) <= score_atol)
                & (np.abs(got[:, 2:] - row[2:]).max(axis=1) <= box_atol)
            )
            if not fits.any():
                nearest = got[np.argmin(np.abs(got[:, 2:] - row[2:]).max(axis=1))] if len(got) else None
                raise AssertionError(f"image {image}: no detection matches {row.tolist()}; nearest: {nearest}")
            free[np.argmax(fits)] = False


def pile_and_spread(n_pile=1100, n_spread=400, pile_first=True):
    """Raw 'corners' output (absolute, variances 1, zero offsets: each box is its anchor) of
    one class: `n_pile` copies of one box and `n_spread` disjoint boxes, the pile scoring
    best (0.9 down in steps of 1e-5; the spread from 0.8 in steps of 1e-4), or, with
    `pile_first` False, the spread (from 0.9) above the pile (from 0.8)."""
    pile = np.tile([0.0, 0.0, 10.0, 10.0], (n_pile, 1))
    j = np.arange(n_spread)
    spread = np.column_stack([(j % 20) * 20 + 100, (j // 20) * 20 + 100, (j % 20) * 20 + 110, (j // 20) * 20 + 110])
    anchors = np.vstack([pile, spread])
    top, second = (0.9, 0.8) if pile_first else (0.8, 0.9)
    # Above background everywhere: kept by the fast rule too.
    scores = np.concatenate([top - 1e-5 * np.arange(n_pile), second - 1e-4 * j])
    y = np.zeros((1, n_pile + n_spread, 14), np.float32)
    y[0, :, 0], y[0, :, 1] = 1 - scores, scores
    y[0, :, 6:10], y[0, :, 10:] = anchors, 1.0
    return y


@contextlib.contextmanager
def shared_folder(tmp_path_factory, name):
    """A folder for a run that several tests compare with: under pytest-xdist one folder that
    the workers share, locked while a worker is inside (the first to come makes the run,
    the others find it made); otherwise a temporary folder of this process."""
    import fcntl

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield tmp_path_factory.mktemp(name)
        return
    folder = tmp_path_factory.getbasetemp().parent / name
    with open(str(folder) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield folder
