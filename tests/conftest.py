import os
import sys

import numpy as np
import pytest

# The tests import the packages from the checkout and the reference module from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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
