"""DecodeDetections / DecodeDetectionsFast: parity with the NumPy decoders, padding, config."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import pile_and_spread  # noqa: E402

from ssd_keras.boxes.layout import OFFSETS  # noqa: E402
from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast  # noqa: E402
from ssd_keras.layers.decode_detections import DecodeDetections  # noqa: E402
from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast  # noqa: E402

pytestmark = pytest.mark.backends  # run under TensorFlow, JAX and PyTorch

CONFIG = dict(
    img_height=120,
    img_width=160,
    n_classes=5,
    predictor_sizes=[(15, 20), (8, 10), (4, 5), (2, 3)],
    scales=[0.1, 0.25, 0.45, 0.7, 0.95],
    variances=[0.1, 0.1, 0.2, 0.2],
)


def _raw_predictions(seed, n_images=3, coords="centroids", normalize_coords=True, sharpness=2.0):
    """The packed output of an imaginary model: softmax scores, random offsets, real anchors."""
    rng = np.random.default_rng(seed)
    encoder = SSDInputEncoder(**CONFIG, coords=coords, normalize_coords=normalize_coords)
    y = encoder.generate_encoding_template(n_images)
    n = CONFIG["n_classes"] + 1
    logits = rng.normal(0, sharpness, y[..., :n].shape)
    y[..., :n] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y[..., OFFSETS] = rng.normal(0, 0.5, y[..., OFFSETS].shape)
    return y.astype(np.float32)


def _layer_output(layer, y):
    return keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(y)))


def _by_score(rows):
    """Rows by descending score, ties by class and coordinates (tie order is not part of the rule)."""
    rows = np.asarray(rows, dtype=np.float64)
    return rows[np.lexsort(tuple(rows[:, 2:].T[::-1]) + (rows[:, 0], -rows[:, 1]))]


def _assert_parity(layer_out, numpy_out, top_k):
    for image, expected in zip(layer_out, numpy_out):
        n = min(len(expected), top_k)
        assert n > 0
        assert np.all(np.diff(image[:n, 1]) <= 0)
        image, expected = _by_score(image[:n]), _by_score(expected[:n])
        np.testing.assert_array_equal(image[:n, 0], expected[:n, 0])
        np.testing.assert_allclose(image[:n, 1], expected[:n, 1], rtol=1e-6)
        np.testing.assert_allclose(image[:n, 2:], expected[:n, 2:], rtol=1e-4, atol=1e-3)


def _assert_zero_padding(out):
    """Rows after the last detection (confidence 0) are all zeros; detections come first."""
    valid = out[..., 1] > 0
    assert np.all(valid[:, :-1] | ~valid[:, 1:])
    np.testing.assert_array_equal(out[~valid], 0.0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("coords", ["centroids", "corners", "minmax"])
@pytest.mark.parametrize("top_k", [7, 200])
def test_decode_detections_layer_equals_numpy(seed, coords, top_k):
    y = _raw_predictions(seed, coords=coords)
    args = dict(confidence_thresh=0.3, iou_threshold=0.45, img_height=120, img_width=160, normalize_coords=True)
    layer = DecodeDetections(top_k=top_k, nms_max_output_size=400, coords=coords, **args)
    out = _layer_output(layer, y)
    assert out.shape == (3, top_k, 6)
    _assert_zero_padding(out)
    _assert_parity(out, decode_detections(y, top_k=top_k, input_coords=coords, **args), top_k)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("coords", ["centroids", "corners"])
@pytest.mark.parametrize("top_k", [7, 200])
def test_decode_detections_fast_layer_equals_numpy(seed, coords, top_k):
    y = _raw_predictions(seed, coords=coords, normalize_coords=False)
    args = dict(confidence_thresh=0.3, iou_threshold=0.45, img_height=None, img_width=None, normalize_coords=False)
    layer = DecodeDetectionsFast(top_k=top_k, nms_max_output_size=400, coords=coords, **args)
    out = _layer_output(layer, y)
    assert out.shape == (3, top_k, 6)
    _assert_zero_padding(out)
    _assert_parity(out, decode_detections_fast(y, top_k=top_k, input_coords=coords, **args), top_k)


def test_layers_without_nms_keep_every_candidate_sorted():
    y = _raw_predictions(5)
    args = dict(confidence_thresh=0.5, iou_threshold=0.0, img_height=120, img_width=160)
    out = _layer_output(DecodeDetectionsFast(top_k=50, **args), y)
    _assert_parity(out, decode_detections_fast(y, top_k=50, **args), 50)


def test_hand_made_case_thresholds_are_strict_and_padding_is_zero():
    # Two anchors, two positive classes; absolute corners, zero offsets: the box is the anchor.
    anchor_a, anchor_b = [0, 0, 10, 10], [1, 0, 11, 10]  # IoU 90 / 110 = 0.818
    variances = [1, 1, 1, 1]
    y = np.array(
        [[[0.2, 0.5, 0.3, 0, 0, 0, 0, *anchor_a, *variances], [0.1, 0.6, 0.3, 0, 0, 0, 0, *anchor_b, *variances]]],
        np.float32,
    )
    layer = DecodeDetections(
        confidence_thresh=0.3, iou_threshold=0.8, top_k=4, coords="corners", normalize_coords=False
    )
    out = _layer_output(layer, y)[0]
    # Class 1: 0.6 (b) suppresses 0.5 (a). Class 2: both score exactly 0.3, not above the threshold.
    np.testing.assert_allclose(out, [[1, 0.6, *anchor_b], [0] * 6, [0] * 6, [0] * 6], rtol=1e-6)
    out = _layer_output(
        DecodeDetections(confidence_thresh=0.25, iou_threshold=0.85, top_k=4, coords="corners", normalize_coords=False),
        y,
    )[0]
    np.testing.assert_allclose(out[:, :2], [[1, 0.6], [1, 0.5], [2, 0.3], [2, 0.3]], rtol=1e-6)
    # Fast: one class per anchor (both argmax class 1), then class-agnostic NMS.
    out = _layer_output(
        DecodeDetectionsFast(
            confidence_thresh=0.3, iou_threshold=0.8, top_k=3, coords="corners", normalize_coords=False
        ),
        y,
    )[0]
    np.testing.assert_allclose(out, [[1, 0.6, *anchor_b], [0] * 6, [0] * 6], rtol=1e-6)


def test_no_detections_give_all_zero_rows():
    y = _raw_predictions(1)
    for layer_class in (DecodeDetections, DecodeDetectionsFast):
        out = _layer_output(layer_class(confidence_thresh=0.9999, img_height=120, img_width=160, top_k=5), y)
        np.testing.assert_array_equal(out, np.zeros((3, 5, 6)))


@pytest.mark.parametrize("layer_class", [DecodeDetections, DecodeDetectionsFast])
def test_config_round_trip_and_output_shape(layer_class, tmp_path):
    layer = layer_class(
        confidence_thresh=0.2, iou_threshold=0.5, top_k=11, nms_max_output_size=50, img_height=120, img_width=160
    )
    config = layer.get_config()
    assert {
        k: config[k]
        for k in (
            "confidence_thresh",
            "iou_threshold",
            "top_k",
            "nms_max_output_size",
            "coords",
            "normalize_coords",
            "img_height",
            "img_width",
        )
    } == dict(
        confidence_thresh=0.2,
        iou_threshold=0.5,
        top_k=11,
        nms_max_output_size=50,
        coords="centroids",
        normalize_coords=True,
        img_height=120.0,
        img_width=160.0,
    )
    shape = layer.compute_output_shape((None, 100, 18))
    assert shape == (None, 11, 6) and all(isinstance(d, int) for d in shape[1:])  # ints, not tensors
    y = _raw_predictions(2)
    inputs = keras.Input(y.shape[1:])
    model = keras.Model(inputs, layer_class.from_config(config)(inputs))
    path = str(tmp_path / "decode.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(y, verbose=0), model.predict(y, verbose=0))


def test_float16_input_is_decoded_in_float32():
    y = _raw_predictions(3)
    args = dict(confidence_thresh=0.6, img_height=120, img_width=160, top_k=400)  # every detection: ties inside
    out16 = _layer_output(DecodeDetections(**args), y.astype(np.float16))
    assert out16.dtype == np.float32
    expected = decode_detections(y.astype(np.float16).astype(np.float32), **args)
    _assert_parity(out16, expected, 400)


def test_errors():
    with pytest.raises(ValueError, match="needs the image size"):
        DecodeDetections(normalize_coords=True)
    with pytest.raises(ValueError, match="Expected `coords` to be one of"):
        DecodeDetectionsFast(coords="xywh", normalize_coords=False)
    with pytest.raises(ValueError, match="`top_k` to be a positive integer"):
        DecodeDetections(top_k=0, normalize_coords=False)
    with pytest.raises(ValueError, match="at least one class"):
        DecodeDetections(normalize_coords=False)(np.zeros((1, 4, 13), np.float32))


@pytest.mark.parametrize(
    "layer_class, numpy_decoder",
    [(DecodeDetections, decode_detections), (DecodeDetectionsFast, decode_detections_fast)],
)
def test_all_candidates_are_used_when_the_best_ones_suppress_each_other(layer_class, numpy_decoder):
    # The best 1024 candidates (the first pass) are one box 1100 times: one detection. The
    # exact result needs the lower-scoring candidates too, which the second pass takes.
    y = pile_and_spread()
    args = dict(confidence_thresh=0.01, iou_threshold=0.45, coords="corners", normalize_coords=False)
    out = _layer_output(layer_class(top_k=50, **args), y)[0]
    expected = numpy_decoder(y, top_k=50, input_coords="corners", **{k: v for k, v in args.items() if k != "coords"})[0]
    assert len(expected) == 50 and expected[1, 1] == pytest.approx(0.8)  # 1 from the pile, 49 spread
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_ties_go_to_the_lower_anchor_then_the_lower_class():
    # Anchors 0 and 1 hold the same box; scores tie everywhere. NumPy rule: candidates are
    # numbered anchor-major, a tie goes to the lower number.
    box = [0, 0, 10, 10]
    row = [0.2, 0.4, 0.4, 0, 0, 0, 0, *box, 1, 1, 1, 1]
    y = np.array([[row, row]], np.float32)
    args = dict(confidence_thresh=0.1, iou_threshold=0.5, top_k=4, coords="corners", normalize_coords=False)
    out = _layer_output(DecodeDetections(**args), y)[0]
    # Class 1: anchor 0 kept, anchor 1 suppressed; class 2 likewise; (0, class 1) comes first.
    np.testing.assert_allclose(out, [[1, 0.4, *box], [2, 0.4, *box], [0] * 6, [0] * 6], rtol=1e-6)
    np.testing.assert_allclose(
        decode_detections(
            y, confidence_thresh=0.1, iou_threshold=0.5, top_k=4, input_coords="corners", normalize_coords=False
        )[0],
        out[:2],
        rtol=1e-6,
    )
    # Fast: each anchor takes class 1 (the first maximum), anchor 0 suppresses anchor 1.
    out = _layer_output(DecodeDetectionsFast(**args), y)[0]
    np.testing.assert_allclose(out, [[1, 0.4, *box]] + [[0] * 6] * 3, rtol=1e-6)
