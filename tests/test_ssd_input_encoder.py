import pickle

import numpy as np
import pytest
from conftest import SSD300_VOC, random_labels
from reference import encode_image

from ssd_keras.boxes.coding import decode_boxes
from ssd_keras.boxes.layout import ANCHORS, CLASSES, OFFSETS, VARIANCES
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.errors import DegenerateBoxError

SMALL = dict(
    img_height=60, img_width=80, n_classes=3, predictor_sizes=[(6, 8), (3, 4), (1, 2)], scales=[0.15, 0.4, 0.7, 0.95]
)


def test_ssd300_example_from_the_spec():
    encoder = SSDInputEncoder(**SSD300_VOC)
    y = encoder([np.array([[12, 146, 52, 386, 264], [15, 1, 1, 221, 235]])])
    assert y.shape == (1, 8732, 33) and y.dtype == np.float32
    positives = y[0, :, 1:21].max(axis=1) > 0
    negatives = y[0, :, 0] == 1
    assert positives.sum() == 16 and negatives.sum() == 8716
    assert (~positives & ~negatives).sum() == 0  # neg_iou_limit == pos_iou_threshold: no neutrals
    np.testing.assert_array_equal(y[0, :, ANCHORS], encoder._anchors.astype(np.float32))
    np.testing.assert_allclose(y[0, :, VARIANCES], np.tile([0.1, 0.1, 0.2, 0.2], (8732, 1)), rtol=1e-6)


@pytest.mark.parametrize("coords", ["centroids", "corners", "minmax"])
@pytest.mark.parametrize("normalize_coords", [True, False])
def test_encode_then_decode_returns_the_ground_truth(coords, normalize_coords, rng):
    encoder = SSDInputEncoder(**SMALL, coords=coords, normalize_coords=normalize_coords)
    labels = random_labels(rng, 4, 3, 60, 80, max_boxes=5, min_boxes=1)
    y = encoder(labels).astype(np.float64)
    scale = np.array([80, 60, 80, 60]) if normalize_coords else np.ones(4)
    for i, image_labels in enumerate(labels):
        matched = np.flatnonzero(y[i, :, 1:-12].max(axis=1) > 0)
        assert len(matched) >= len(image_labels)  # every box has at least its bipartite anchor
        boxes = decode_boxes(y[i, matched, OFFSETS], y[i, matched, ANCHORS], y[i, matched, VARIANCES], coords)
        if coords == "centroids":
            boxes = np.column_stack([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2])
        elif coords == "minmax":
            boxes = boxes[:, [0, 2, 1, 3]]
        boxes *= scale
        classes = y[i, matched, 1:-12].argmax(axis=1) + 1
        # Each matched anchor decodes to exactly one ground-truth box of its class.
        for box, cls in zip(boxes, classes):
            distance = np.abs(image_labels[:, 1:] - box).max(axis=1)
            j = distance.argmin()
            assert distance[j] < 1e-3 and image_labels[j, 0] == cls
        # And every ground-truth box is recovered.
        for gt in image_labels:
            assert np.abs(boxes - gt[1:]).max(axis=1).min() < 1e-3


CONFIGS = [
    dict(),
    dict(coords="corners", normalize_coords=False, neg_iou_limit=0.2),
    dict(coords="minmax", matching_type="bipartite"),
    dict(border_pixels="include", normalize_coords=False, neg_iou_limit=0.4, pos_iou_threshold=0.6),
    dict(clip_boxes=True, two_boxes_for_ar1=False, aspect_ratios_global=[1.0, 3.0], variances=[1, 1, 1, 1]),
    dict(steps=[10, (20, 20), 40], offsets=[0.5, 0.3, (0.0, 0.5)], neg_iou_limit=0.0),
    dict(background_id=2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_vectorized_encoder_equals_loop_reference(config, rng):
    encoder = SSDInputEncoder(**{**SMALL, **config})
    labels = random_labels(rng, 5, 3, 60, 80, max_boxes=6)
    labels.append(np.vstack([labels[0], labels[0][:1]]) if len(labels[0]) else labels[1])  # duplicate box
    if config.get("background_id") == 2:
        # Class 2 is the background here: relabel those boxes as class 3.
        labels = [
            np.column_stack([np.where(lab[:, 0] == 2, 3, lab[:, 0]), lab[:, 1:]]).reshape(-1, 5) for lab in labels
        ]
    y, y_matched = encoder(labels, diagnostics=True)
    for i, image_labels in enumerate(labels):
        expected = encode_image(
            image_labels,
            encoder._anchors,
            encoder.n_classes,
            encoder.coords,
            encoder.normalize_coords,
            60,
            80,
            encoder.variances,
            encoder.matching_type,
            encoder.pos_iou_threshold,
            encoder.neg_iou_limit,
            encoder.border_pixels,
            encoder.background_id,
        )
        np.testing.assert_array_equal(y[i, :, :-12], expected[:, :-12])
        np.testing.assert_allclose(y[i, :, -12:], expected[:, -12:], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(y_matched[i, :, :-12], expected[:, :-12])
        assert np.all(y_matched[i, :, OFFSETS] == 0)


def test_encoder_equals_reference_on_ssd300(rng):
    encoder = SSDInputEncoder(**{**SSD300_VOC, "neg_iou_limit": 0.3})
    labels = random_labels(rng, 3, 20, 300, 300, max_boxes=5, min_boxes=1)
    y = encoder(labels)
    for i, image_labels in enumerate(labels):
        expected = encode_image(
            image_labels,
            encoder._anchors,
            21,
            "centroids",
            True,
            300,
            300,
            encoder.variances,
            "multi",
            0.5,
            0.3,
            "half",
        )
        np.testing.assert_array_equal(y[i, :, :-12], expected[:, :-12])
        np.testing.assert_allclose(y[i, :, -12:], expected[:, -12:], rtol=1e-5, atol=1e-5)


def test_tiny_box_that_reaches_no_threshold_still_gets_an_anchor():
    encoder = SSDInputEncoder(**SMALL)
    y = encoder([np.array([[1, 10, 10, 11, 11]])])  # 1x1 pixel box: IoU far below 0.3 everywhere
    positives = np.flatnonzero(y[0, :, 1:-12].max(axis=1) > 0)
    assert len(positives) == 1


def test_images_without_boxes_give_all_background():
    encoder = SSDInputEncoder(**SMALL)
    for labels in ([np.zeros((0, 5)), []], [np.zeros((0, 5))]):
        y = encoder(labels)
        np.testing.assert_array_equal(y, encoder.generate_encoding_template(len(labels)))
        assert np.all(y[..., 0] == 1) and np.all(y[..., CLASSES][..., 1:] == 0) and np.all(y[..., OFFSETS] == 0)
    y = encoder([[], np.array([[1, 10, 10, 40, 40]])])
    assert np.all(y[0, :, 0] == 1) and y[1, :, 1].sum() >= 1


def test_labels_as_a_3d_array_and_as_lists():
    encoder = SSDInputEncoder(**SMALL)
    labels = np.array([[[1, 10, 10, 40, 40]], [[2, 5, 5, 50, 30]]], dtype=float)
    np.testing.assert_array_equal(encoder(labels), encoder([row.tolist() for row in labels]))


def test_output_buffer_is_not_reused_while_referenced():
    encoder = SSDInputEncoder(**SMALL)
    first = encoder([np.array([[1, 10, 10, 40, 40]])])
    snapshot = first.copy()
    view = encoder([np.array([[2, 5, 5, 50, 30]])])[0, :, :4]  # only a view survives
    for _ in range(3):
        encoder([np.array([[3, 1, 1, 70, 50]])])
    np.testing.assert_array_equal(first, snapshot)  # still what it was
    assert view[:, 2].sum() >= 1  # class 2 is still there
    # Once dropped, a buffer is recycled, with correct contents.
    a = encoder([np.array([[1, 10, 10, 40, 40]])])
    del a
    b = encoder([np.array([[2, 10, 10, 40, 40]])])
    assert b[0, :, 1].sum() == 0 and b[0, :, 2].sum() >= 1


def test_pickles_for_worker_processes():
    encoder = SSDInputEncoder(**SMALL)
    labels = [np.array([[1, 10, 10, 40, 40]])]
    clone = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(clone(labels), encoder(labels))


def test_members_and_anchor_generation():
    encoder = SSDInputEncoder(**SSD300_VOC)
    assert encoder.n_classes == 21 and encoder.n_boxes == [4, 6, 6, 6, 4, 4] and encoder.n_boxes_total == 8732
    assert SSDInputEncoder(**SMALL).n_boxes == 4  # global aspect ratios: one number, as in the original
    boxes, centers, wh, steps, offsets = encoder.generate_anchor_boxes_for_layer(
        (38, 38), encoder.aspect_ratios[0], 0.1, 0.2, 8, 0.5, diagnostics=True
    )
    np.testing.assert_allclose(boxes, encoder.boxes_list[0])
    assert steps == (8.0, 8.0) and offsets == (0.5, 0.5) and wh.shape == (4, 2)
    np.testing.assert_allclose(centers[0][:2], [4, 12])
    template, matched = encoder.generate_encoding_template(2, diagnostics=True)
    assert template.shape == matched.shape == (2, 8732, 33)


def test_degenerate_box_error_names_item_and_box():
    encoder = SSDInputEncoder(**SMALL)
    good = np.array([[1, 10, 10, 40, 40]])
    with pytest.raises(DegenerateBoxError, match=r"batch item 1: box 1 .* \[2\.0, 30\.0, 10\.0, 20\.0, 40\.0\]"):
        encoder([good, np.array([[1, 10, 10, 40, 40], [2, 30, 10, 20, 40]])])
    with pytest.raises(DegenerateBoxError, match="batch item 0: box 0"):
        encoder([np.array([[1, 10, 40, 40, 40]])])


def test_label_errors():
    encoder = SSDInputEncoder(**SMALL)
    with pytest.raises(ValueError, match=r"batch item 0 to have shape \(k, 5\)"):
        encoder([np.array([[1, 10, 10, 40]])])
    with pytest.raises(ValueError, match=r"Batch item 1, box 0 has class_id 4"):
        encoder([np.array([[1, 10, 10, 40, 40]]), np.array([[4, 10, 10, 40, 40]])])
    with pytest.raises(ValueError, match="class_id 0"):
        encoder([np.array([[0, 10, 10, 40, 40]])])
    with pytest.raises(ValueError, match="class_id 1.5"):
        encoder([np.array([[1.5, 10, 10, 40, 40]])])
    with pytest.raises(ValueError, match="Batch item 0, box 1 has a non-finite value"):
        encoder([np.array([[1, 10, 10, 40, 40], [1, np.nan, 10, 40, 40]])])


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(scales=None, min_scale=None), "Either `min_scale` and `max_scale` or `scales`"),
        (dict(scales=[0.1, 0.2]), "to hold 4 values"),
        (dict(aspect_ratios_global=None), "At least one of"),
        (dict(aspect_ratios_per_layer=[[1.0]]), "to hold 3 lists"),
        (dict(variances=[0.1, 0.1, 0.2]), "4 variance values"),
        (dict(variances=[0.1, 0.1, 0.2, -1]), "variances to be > 0"),
        (dict(coords="xywh"), "Expected `coords` to be one of"),
        (dict(matching_type="hungarian"), "Expected `matching_type` to be one of"),
        (dict(border_pixels="all"), "Expected `border_pixels` to be one of"),
        (dict(steps=[8, 16]), "one entry per predictor layer"),
        (dict(offsets=[0.5, 0.5]), "one entry per predictor layer"),
        (dict(predictor_sizes=[(6, 0)]), "predictor_sizes"),
        (dict(n_classes=0), "positive integer"),
        (dict(img_height=0), "positive image size"),
        (dict(background_id=5), "background_id"),
    ],
)
def test_configuration_errors(override, message):
    with pytest.raises(ValueError, match=message):
        SSDInputEncoder(**{**SMALL, **override})
