import os
import subprocess
import sys

# The backend is fixed when Keras is first imported: `make test` runs the suite once under
# TensorFlow, then the tests marked `backends` again with KERAS_BACKEND=jax and =torch.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BACKEND = os.environ["KERAS_BACKEND"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The tests import the packages from the checkout and the reference module from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import presets  # noqa: E402

# A feature of TensorFlow's own (tf.distribute, SavedModel, TFLite): skipped under the other backends.
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow feature")


def run_under(backend, argv, env=None, timeout=600, check=True):
    """Runs ``python argv...`` in a fresh process with Keras on `backend`; returns the
    `subprocess.CompletedProcess` (stdout, stderr as text). The one way the tests run a
    check under a backend other than this process's, which is fixed at import."""
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=os.pathsep.join([ROOT, os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")]))
    environment.update(env or {})
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=environment)
    if check:
        assert result.returncode == 0, f"{backend}: {' '.join(argv)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
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


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _preset_model(name):
    def build():
        from ssd_keras_cli.configs import builder

        return builder(presets.get(name).architecture)(**presets.model_kwargs(name))

    return build


# The models of the original notebooks (Pascal VOC SSD300/SSD512, Udacity SSD7).
DEFAULT_MODELS = {name: _preset_model(name) for name in ("ssd300_voc", "ssd512_voc", "ssd7_udacity")}
