import numpy as np
import pytest
from conftest import SSD300_AR, SSD300_PREDICTOR_SIZES

from ssd_keras.boxes.anchors import (
    anchor_box_sizes,
    generate_anchor_boxes,
    n_boxes_per_cell,
    resolve_aspect_ratios,
    resolve_per_layer,
    resolve_scales,
    resolve_variances,
)


def test_one_by_one_feature_map_by_hand():
    # 300x300 image, 1x1 map: step 300, centre (150, 150); size = 300.
    # ar 1: 0.5 * 300 = 150; ar 1': sqrt(0.5 * 0.8) * 300 = 189.7367; ar 2: 150*sqrt2 x 150/sqrt2.
    boxes = generate_anchor_boxes(300, 300, (1, 1), [1.0, 2.0], 0.5, 0.8)
    assert boxes.shape == (1, 1, 3, 4)
    side = np.sqrt(0.4) * 300
    expected = [[150, 150, 150, 150], [150, 150, side, side], [150, 150, 150 * np.sqrt(2), 150 / np.sqrt(2)]]
    np.testing.assert_allclose(boxes[0, 0], expected)


def test_two_by_two_feature_map_by_hand():
    # 100x200 image (h x w), 2x2 map: steps (50, 100), centres y = 25, 75 and x = 50, 150.
    # size = min(100, 200) = 100; scale 0.2 -> 20x20 boxes.
    boxes = generate_anchor_boxes(100, 200, (2, 2), [1.0], 0.2, 0.2, two_boxes_for_ar1=False, coords="corners")
    assert boxes.shape == (2, 2, 1, 4)
    np.testing.assert_allclose(boxes[0, 0, 0], [40, 15, 60, 35])
    np.testing.assert_allclose(boxes[0, 1, 0], [140, 15, 160, 35])
    np.testing.assert_allclose(boxes[1, 0, 0], [40, 65, 60, 85])
    np.testing.assert_allclose(boxes[1, 1, 0], [140, 65, 160, 85])
    minmax = generate_anchor_boxes(100, 200, (2, 2), [1.0], 0.2, 0.2, two_boxes_for_ar1=False, coords="minmax")
    np.testing.assert_allclose(minmax[1, 1, 0], [140, 160, 65, 85])
    normalized = generate_anchor_boxes(
        100, 200, (2, 2), [1.0], 0.2, 0.2, two_boxes_for_ar1=False, normalize_coords=True
    )
    np.testing.assert_allclose(normalized[1, 0, 0], [50 / 200, 75 / 100, 20 / 200, 20 / 100])


def test_explicit_steps_offsets_and_pairs():
    # steps (10, 20) and offsets (0, 1): centres y = 0, 10; x = 20, 40.
    boxes = generate_anchor_boxes(100, 100, (2, 2), [1.0], 0.1, 0.1, False, this_steps=(10, 20), this_offsets=(0, 1))
    np.testing.assert_allclose(boxes[:, :, 0, 1][:, 0], [0, 10])
    np.testing.assert_allclose(boxes[:, :, 0, 0][0], [20, 40])
    scalar = generate_anchor_boxes(100, 100, (2, 2), [1.0], 0.1, 0.1, False, this_steps=8, this_offsets=0.5)
    np.testing.assert_allclose(scalar[:, 0, 0, 1], [4, 12])


def test_clip_boxes():
    # A 60x60 box centred at (25, 25) in a 100x100 image would span -5..55.
    boxes = generate_anchor_boxes(100, 100, (2, 2), [1.0], 0.6, 0.6, False, coords="corners", clip_boxes=True)
    np.testing.assert_allclose(boxes[0, 0, 0], [0, 0, 55, 55])
    np.testing.assert_allclose(boxes[1, 1, 0], [45, 45, 99, 99])


def test_caffe_order_within_a_cell():
    sizes = anchor_box_sizes([1.0, 2.0, 0.5, 3.0, 1.0 / 3.0], 0.2, 0.37, True, 300)
    w, h = sizes.T
    np.testing.assert_allclose(w[:2], [60, np.sqrt(0.2 * 0.37) * 300])  # 1, then 1'
    np.testing.assert_allclose(w[2:] / h[2:], [2.0, 0.5, 3.0, 1.0 / 3.0])  # 2, 1/2, 3, 1/3
    np.testing.assert_allclose(w[2:] * h[2:], 60.0**2)


def _total(img_h, img_w, sizes, ars, scales, steps=None):
    return sum(
        generate_anchor_boxes(
            img_h, img_w, size, ar, scales[i], scales[i + 1], True, None if steps is None else steps[i]
        )[..., 0].size
        for i, (size, ar) in enumerate(zip(sizes, ars))
    )


def test_default_totals():
    assert (
        _total(
            300,
            300,
            SSD300_PREDICTOR_SIZES,
            SSD300_AR,
            [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
            [8, 16, 32, 64, 100, 300],
        )
        == 8732
    )
    ssd512_ar = [[1.0, 2.0, 0.5]] + [[1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]] * 4 + [[1.0, 2.0, 0.5]] * 2
    ssd512_sizes = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert _total(512, 512, ssd512_sizes, ssd512_ar, [0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05]) == 24564
    ssd7_sizes = [(37, 60), (18, 30), (9, 15), (4, 7)]
    assert _total(300, 480, ssd7_sizes, [[0.5, 1.0, 2.0]] * 4, [0.08, 0.16, 0.32, 0.64, 0.96]) == 11692


def test_ssd300_first_and_last_anchors_from_the_spec():
    first = generate_anchor_boxes(300, 300, (38, 38), SSD300_AR[0], 0.1, 0.2, True, 8, 0.5, normalize_coords=True)
    np.testing.assert_allclose(first[0, 0, :, 0], 4 / 300)
    np.testing.assert_allclose(
        first[0, 0, :, 2:], [[0.1, 0.1], [0.141421, 0.141421], [0.141421, 0.070711], [0.070711, 0.141421]], atol=1e-6
    )
    np.testing.assert_allclose(first[0, 1, 0, 0], 12 / 300)
    last = generate_anchor_boxes(300, 300, (1, 1), SSD300_AR[5], 0.88, 1.05, True, 300, 0.5, normalize_coords=True)
    np.testing.assert_allclose(
        last[0, 0],
        [
            [0.5, 0.5, 0.88, 0.88],
            [0.5, 0.5, 0.961249, 0.961249],
            [0.5, 0.5, 1.244508, 0.622254],
            [0.5, 0.5, 0.622254, 1.244508],
        ],
        atol=1e-6,
    )


def test_n_boxes_per_cell():
    assert n_boxes_per_cell([0.5, 1.0, 2.0], True) == 4
    assert n_boxes_per_cell([0.5, 1.0, 2.0], False) == 3
    assert n_boxes_per_cell([0.5, 2.0], True) == 2  # no square box, so no second one


def test_resolvers():
    np.testing.assert_allclose(resolve_scales(0.1, 0.9, None, 4), [0.1, 0.3, 0.5, 0.7, 0.9])
    assert resolve_scales(None, None, np.array([0.1, 0.2]), 1) == [0.1, 0.2]
    assert resolve_aspect_ratios([1, 2], None, 2) == [[1.0, 2.0], [1.0, 2.0]]
    assert resolve_aspect_ratios([1, 2], [[1], [3]], 2) == [[1.0], [3.0]]
    assert resolve_per_layer(None, 3, "steps") == [None, None, None]
    assert resolve_per_layer(8, 2, "steps") == [8.0, 8.0]
    assert resolve_per_layer([8, (4, 6)], 2, "steps") == [8.0, (4.0, 6.0)]
    assert resolve_per_layer([0, 0.5], 2, "offsets", allow_zero=True) == [0.0, 0.5]
    assert resolve_variances([0.1, 0.1, 0.2, 0.2]) == [0.1, 0.1, 0.2, 0.2]


def test_resolver_errors():
    with pytest.raises(ValueError, match="Either `min_scale` and `max_scale` or `scales`"):
        resolve_scales(None, None, None, 6)
    with pytest.raises(ValueError, match="0 < min_scale <= max_scale"):
        resolve_scales(0.5, 0.2, None, 6)
    with pytest.raises(ValueError, match="to hold 7 values"):
        resolve_scales(None, None, [0.1] * 6, 6)
    with pytest.raises(ValueError, match="> 0"):
        resolve_scales(None, None, [0.1, 0.0], 1)
    with pytest.raises(ValueError, match="At least one of"):
        resolve_aspect_ratios(None, None, 6)
    with pytest.raises(ValueError, match="to hold 6 lists"):
        resolve_aspect_ratios(None, [[1.0]] * 5, 6)
    with pytest.raises(ValueError, match="aspect ratios > 0"):
        resolve_aspect_ratios([1.0, -2.0], None, 2)
    with pytest.raises(ValueError, match="one entry per predictor layer"):
        resolve_per_layer([8, 16], 3, "steps")
    with pytest.raises(ValueError, match=r"`steps\[1\]` to be None, a number or an \(h, w\) pair"):
        resolve_per_layer([8, "16"], 2, "steps")
    with pytest.raises(ValueError, match=r"`steps\[0\]` values to be > 0"):
        resolve_per_layer([0, 16], 2, "steps")
    with pytest.raises(ValueError, match="4 variance values"):
        resolve_variances([0.1, 0.2])
    with pytest.raises(ValueError, match="variances to be > 0"):
        resolve_variances([0.1, 0.1, 0.0, 0.2])
    with pytest.raises(ValueError, match="Expected `coords` to be one of"):
        generate_anchor_boxes(10, 10, (1, 1), [1.0], 0.5, 0.5, coords="xywh")
    with pytest.raises(ValueError, match="at least 1x1"):
        generate_anchor_boxes(10, 10, (0, 1), [1.0], 0.5, 0.5)
