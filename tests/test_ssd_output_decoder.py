import numpy as np
import pytest
from conftest import SSD300_VOC
from reference import decode_image
from reference import greedy_nms as reference_nms

from ssd_keras.boxes.layout import OFFSETS, VARIANCES
from ssd_keras.encoding import output_decoder as ssd_output_decoder
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.encoding.output_decoder import (
    _greedy_nms,
    _greedy_nms2,
    decode_detections,
    decode_detections_debug,
    decode_detections_fast,
    get_num_boxes_per_pred_layer,
    get_pred_layers,
    greedy_nms,
)

SMALL = dict(
    img_height=60, img_width=80, n_classes=3, predictor_sizes=[(6, 8), (3, 4), (1, 2)], scales=[0.15, 0.4, 0.7, 0.95]
)


def _canonical(rows):
    rows = np.asarray(rows, dtype=float).reshape(-1, 6)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("coords", ["centroids", "corners", "minmax"])
@pytest.mark.parametrize("normalize_coords", [True, False])
def test_one_hot_targets_decode_to_the_ground_truth(coords, normalize_coords):
    # Non-overlapping boxes; the encoded targets with their one-hot classes as scores.
    labels = [
        np.array([[1, 2, 3, 20, 25], [3, 45, 30, 78, 58]], dtype=float),
        np.array([[2, 30, 5, 55, 28]], dtype=float),
        np.zeros((0, 5)),
    ]
    encoder = SSDInputEncoder(**SMALL, coords=coords, normalize_coords=normalize_coords, neg_iou_limit=0.5)
    y = encoder(labels)
    out = decode_detections(
        y,
        confidence_thresh=0.5,
        iou_threshold=0.45,
        input_coords=coords,
        normalize_coords=normalize_coords,
        img_height=60,
        img_width=80,
    )
    for image_labels, detections in zip(labels, out):
        assert detections.shape == (len(image_labels), 6)
        expected = np.column_stack([image_labels[:, :1], np.ones(len(image_labels)), image_labels[:, 1:]])
        np.testing.assert_allclose(_canonical(detections), _canonical(expected), atol=1e-3)
    fast = decode_detections_fast(
        y, confidence_thresh=0.5, input_coords=coords, normalize_coords=normalize_coords, img_height=60, img_width=80
    )
    for a, b in zip(out, fast):
        np.testing.assert_allclose(_canonical(a), _canonical(b))


def _random_predictions(rng, n_images=3, spread=0.3, n_classes=4):
    encoder = SSDInputEncoder(**{**SMALL, "n_classes": n_classes - 1})
    y = encoder.generate_encoding_template(n_images).astype(np.float64)
    logits = rng.normal(0, 1.5, y[..., :n_classes].shape)
    y[..., :n_classes] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y[..., OFFSETS] = rng.normal(0, spread, y[..., OFFSETS].shape)
    return y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("top_k", [5, 200, "all"])
def test_decode_detections_equals_loop_reference(seed, top_k):
    y = _random_predictions(np.random.default_rng(seed))
    out = decode_detections(y, confidence_thresh=0.2, iou_threshold=0.45, top_k=top_k, img_height=60, img_width=80)
    for image_pred, detections in zip(y, out):
        expected = decode_image(image_pred, 0.2, 0.45, top_k, 60, 80)
        np.testing.assert_allclose(detections, expected, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_decode_detections_fast_equals_loop_reference(seed):
    y = _random_predictions(np.random.default_rng(seed))
    out = decode_detections_fast(y, confidence_thresh=0.3, iou_threshold=0.45, img_height=60, img_width=80)
    for image_pred, detections in zip(y, out):
        np.testing.assert_allclose(detections, decode_image(image_pred, 0.3, 0.45, "all", 60, 80, fast=True), atol=1e-9)


def test_large_batch_uses_the_candidate_subset_exactly(rng, monkeypatch):
    # SSD300 with 1500 candidates (anchor, class) over the threshold, the others below it:
    # the first try covers the best 4 * top_k (at least 1024) of them.
    tries = []
    top_k_candidates = ssd_output_decoder._top_k_candidates
    monkeypatch.setattr(
        ssd_output_decoder,
        "_top_k_candidates",
        lambda scores, limit: tries.append((len(scores), limit)) or top_k_candidates(scores, limit),
    )
    encoder = SSDInputEncoder(**SSD300_VOC)
    y = encoder.generate_encoding_template(1).astype(np.float64)
    n_anchors = y.shape[1]
    scores = rng.uniform(0, 0.1, (n_anchors, 21))
    anchors, classes = np.unravel_index(rng.choice(n_anchors * 20, 1500, replace=False), (n_anchors, 20))
    scores[anchors, classes + 1] = rng.uniform(0.1, 1, 1500)
    y[0, :, :21] = scores
    y[..., OFFSETS] = rng.normal(0, 1, y[..., OFFSETS].shape)
    out = decode_detections(y, confidence_thresh=0.1, iou_threshold=0.45, top_k=300, img_height=300, img_width=300)[0]
    assert tries == [(1500, 1200)] and len(out) == 300
    np.testing.assert_allclose(out, decode_image(y[0], 0.1, 0.45, 300, 300, 300), atol=1e-9)
    # Boxes 2.2 times their anchors' size and a tight IoU threshold: the best 1024 keep
    # fewer than top_k boxes, so the decoder runs again on all of them.
    tries.clear()
    y[..., OFFSETS][..., 2:] += 4
    out = decode_detections(y, confidence_thresh=0.1, iou_threshold=0.01, top_k=200, img_height=300, img_width=300)[0]
    assert tries == [(1500, 1024), (1500, 1500)] and 0 < len(out) < 200
    np.testing.assert_allclose(out, decode_image(y[0], 0.1, 0.01, 200, 300, 300), atol=1e-9)


def test_results_are_sorted_and_thresholds_strict():
    y = _random_predictions(np.random.default_rng(7))
    for detections in decode_detections(y, confidence_thresh=0.1, img_height=60, img_width=80):
        assert np.all(np.diff(detections[:, 1]) <= 0)
    # Exactly-at-threshold scores are excluded by both decoders.
    y = _random_predictions(np.random.default_rng(8), n_images=1)
    y[0, :, :4] = [0.0, 0.5, 0.25, 0.25]
    assert decode_detections(y, confidence_thresh=0.5, img_height=60, img_width=80)[0].shape == (0, 6)
    assert decode_detections_fast(y, confidence_thresh=0.5, img_height=60, img_width=80)[0].shape == (0, 6)


def test_fast_drops_anchors_whose_argmax_is_background():
    y = _random_predictions(np.random.default_rng(9), n_images=1)
    y[0, :, :4] = [0.4, 0.35, 0.15, 0.1]  # class 1 clears 0.3 but background is the argmax
    assert decode_detections_fast(y, confidence_thresh=0.3, img_height=60, img_width=80)[0].shape == (0, 6)
    assert len(decode_detections(y, confidence_thresh=0.3, img_height=60, img_width=80)[0]) > 0


def test_no_detections_give_empty_arrays():
    y = _random_predictions(np.random.default_rng(10), n_images=2)
    for decoder in (decode_detections, decode_detections_fast):
        out = decoder(y, confidence_thresh=1.0, img_height=60, img_width=80)
        assert [a.shape for a in out] == [(0, 6), (0, 6)]
    assert [a.shape for a in decode_detections_debug(y, confidence_thresh=1.0, img_height=60, img_width=80)] == [
        (0, 7),
        (0, 7),
    ]


def test_fast_without_nms_keeps_everything_sorted():
    y = _random_predictions(np.random.default_rng(11), n_images=1)
    out = decode_detections_fast(y, confidence_thresh=0.3, iou_threshold=0, top_k=10, img_height=60, img_width=80)[0]
    classes = y[0, :, :4].argmax(-1)
    conf = y[0, :, :4].max(-1)
    expected = np.sort(conf[(classes != 0) & (conf > 0.3)])[::-1][:10]
    np.testing.assert_allclose(out[:, 1], expected)


def test_greedy_nms_helpers_equal_reference(rng):
    boxes = np.sort(rng.uniform(0, 50, (40, 2, 2)), axis=1).transpose(0, 2, 1).reshape(40, 4)[:, [0, 2, 1, 3]]
    scores = rng.uniform(0, 1, 40)
    classes = rng.integers(1, 4, 40).astype(float)
    rows6 = np.column_stack([classes, scores, boxes])
    for border_pixels, d in [("half", 0.0), ("include", 1.0)]:
        expected = np.array(reference_nms(rows6, 1, 0.3, d))
        np.testing.assert_allclose(greedy_nms([rows6], 0.3, border_pixels=border_pixels)[0], expected)
        np.testing.assert_allclose(_greedy_nms2(rows6, 0.3, border_pixels=border_pixels), expected)
        np.testing.assert_allclose(_greedy_nms(rows6[:, 1:], 0.3, border_pixels=border_pixels), expected[:, 1:])
    centroids = rows6.copy()
    centroids[:, 2:] = np.column_stack([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]])
    kept = greedy_nms([centroids], 0.3, coords="centroids")[0]
    np.testing.assert_allclose(kept[:, :2], np.array(reference_nms(rows6, 1, 0.3))[:, :2])
    assert greedy_nms([np.zeros((0, 6))])[0].shape == (0, 6)


def test_debug_reports_anchor_and_layer():
    y = _random_predictions(np.random.default_rng(12), n_images=2)
    plain = decode_detections(y, confidence_thresh=0.3, img_height=60, img_width=80)
    debug = decode_detections_debug(y, confidence_thresh=0.3, img_height=60, img_width=80)
    for p, dbg, image_pred in zip(plain, debug, y):
        np.testing.assert_allclose(dbg[:, 1:], p)
        anchors = dbg[:, 0].astype(int)
        np.testing.assert_allclose(image_pred[anchors, dbg[:, 1].astype(int)], dbg[:, 2])
    counts = get_num_boxes_per_pred_layer([(6, 8), (3, 4), (1, 2)], [[0.5, 1.0, 2.0]] * 3, True)
    assert counts == [192, 48, 8]
    assert get_num_boxes_per_pred_layer([(2, 2)], [[0.5, 2.0]], True) == [8]
    layers = get_pred_layers(debug, counts)
    for dbg, lay in zip(debug, layers):
        np.testing.assert_array_equal(lay, np.searchsorted([192, 240, 248], dbg[:, 0], side="right"))
    assert get_pred_layers([np.array([[191, 1, 0.9, 0, 0, 1, 1], [192, 1, 0.9, 0, 0, 1, 1]])], counts) == [[0, 1]]
    with pytest.raises(ValueError, match="Box index out of range"):
        get_pred_layers([np.array([[248, 1, 0.9, 0, 0, 1, 1]])], counts)


def test_variance_encoded_in_target():
    y = _random_predictions(np.random.default_rng(13), n_images=1)
    y[..., VARIANCES] = 1.0  # variances of 1 make both conventions equal
    a = decode_detections_debug(y, 0.3, img_height=60, img_width=80, variance_encoded_in_target=True)
    b = decode_detections_debug(y, 0.3, img_height=60, img_width=80)
    np.testing.assert_allclose(a[0], b[0])


def test_errors():
    y = _random_predictions(np.random.default_rng(14), n_images=1)
    with pytest.raises(ValueError, match="needs the image size"):
        decode_detections(y)
    with pytest.raises(ValueError, match="needs the image size"):
        decode_detections_fast(y, img_height=60)
    with pytest.raises(ValueError, match="Expected `top_k` to be a positive integer or 'all'"):
        decode_detections(y, top_k=0, img_height=60, img_width=80)
    with pytest.raises(ValueError, match="Expected `input_coords` to be one of"):
        decode_detections(y, input_coords="xywh", img_height=60, img_width=80)
    with pytest.raises(ValueError, match="Expected `border_pixels` to be one of"):
        decode_detections(y, border_pixels="edge", img_height=60, img_width=80)
    # The shape the caller gave is named, not that of the rows checked (it named (1, 13)).
    with pytest.raises(ValueError, match=r"Expected `y_pred` of shape \(batch, n_boxes.*Received: shape=\(1, 10, 13\)"):
        decode_detections(np.zeros((1, 10, 13)), img_height=60, img_width=80)
    for decode in (
        decode_detections,
        decode_detections_fast,
        decode_detections_debug,
    ):  # one image without its batch axis
        with pytest.raises(ValueError, match=r"Received: shape=\(10, 18\)"):
            decode(np.zeros((10, 18)), img_height=60, img_width=80)
