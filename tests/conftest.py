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


SSD300_PREDICTOR_SIZES = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
SSD300_AR = [[1.0, 2.0, 0.5]] + [[1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]] * 3 + [[1.0, 2.0, 0.5]] * 2
SSD300_VOC = dict(
    img_height=300,
    img_width=300,
    n_classes=20,
    predictor_sizes=SSD300_PREDICTOR_SIZES,
    scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
    aspect_ratios_per_layer=SSD300_AR,
    two_boxes_for_ar1=True,
    steps=[8, 16, 32, 64, 100, 300],
    offsets=[0.5] * 6,
    variances=[0.1, 0.1, 0.2, 0.2],
    pos_iou_threshold=0.5,
    neg_iou_limit=0.5,
    normalize_coords=True,
)


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


def _ssd300_voc():
    from models.keras_ssd300 import ssd_300

    return ssd_300((300, 300, 3), 20, scales=SSD300_VOC["scales"], offsets=[0.5] * 6)


def _ssd512_voc():
    from models.keras_ssd512 import ssd_512

    return ssd_512((512, 512, 3), 20, scales=[0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05], offsets=[0.5] * 7)


def _ssd7_udacity():
    from models.keras_ssd7 import build_model

    return build_model((300, 480, 3), 5, l2_regularization=0.0005, scales=[0.08, 0.16, 0.32, 0.64, 0.96],
                       normalize_coords=True, subtract_mean=127.5, divide_by_stddev=127.5)


# The models of the original notebooks (Pascal VOC SSD300/SSD512, Udacity SSD7).
DEFAULT_MODELS = {"ssd300_voc": _ssd300_voc, "ssd512_voc": _ssd512_voc, "ssd7_udacity": _ssd7_udacity}
