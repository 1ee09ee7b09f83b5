import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import box_iou

from ssd_keras.boxes.geometry import (
    convert_coordinates,
    convert_coordinates2,
    intersection_area,
    intersection_area_,
    iou,
)

A = [0.0, 0.0, 10.0, 10.0]
B = [5.0, 5.0, 15.0, 15.0]


@pytest.mark.parametrize(
    "border_pixels, expected",
    [
        ("half", 25 / (100 + 100 - 25)),  # 0.142857
        ("include", 36 / (121 + 121 - 36)),  # sides 11, overlap 6: 0.174757 (original: 0.115207)
        ("exclude", 16 / (81 + 81 - 16)),  # sides 9, overlap 4: 0.109589 (original: 0.182482)
    ],
)
def test_iou_uses_border_pixels_for_intersection_and_areas(border_pixels, expected):
    result = iou(A, B, coords="corners", border_pixels=border_pixels)
    assert result.shape == (1, 1)
    np.testing.assert_allclose(result[0, 0], expected)


def test_iou_formats_agree_by_hand():
    # The same two boxes in all three formats.
    centroids = ([5.0, 5.0, 10.0, 10.0], [10.0, 10.0, 10.0, 10.0])
    minmax = ([0.0, 10.0, 0.0, 10.0], [5.0, 15.0, 5.0, 15.0])
    for coords, (a, b) in [("centroids", centroids), ("minmax", minmax), ("corners", (A, B))]:
        np.testing.assert_allclose(iou(a, b, coords=coords)[0, 0], 25 / 175)
        np.testing.assert_allclose(intersection_area(a, b, coords=coords)[0, 0], 25.0)


def test_outer_product_and_element_wise_modes():
    boxes1 = np.array([A, B, [20.0, 20.0, 30.0, 30.0]])
    boxes2 = np.array([A, [0.0, 0.0, 5.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    outer = iou(boxes1, boxes2, coords="corners", mode="outer_product")
    assert outer.shape == (3, 3)
    # A vs A = 1; A vs left half of A = 50/100; B vs left half: overlap (5..5) is empty.
    np.testing.assert_allclose(outer[0], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(outer[1], [25 / 175, 0.0, 0.0])
    np.testing.assert_allclose(outer[2], [0.0, 0.0, 1.0])
    elementwise = iou(boxes1, boxes2, coords="corners", mode="element-wise")
    np.testing.assert_allclose(elementwise, [1.0, 0.0, 1.0])
    np.testing.assert_allclose(intersection_area(boxes1, boxes2, coords="corners", mode="element-wise"), [100, 0, 100])
    np.testing.assert_allclose(intersection_area_(boxes1, boxes2), intersection_area(boxes1, boxes2, coords="corners"))


def test_iou_matches_loop_reference(rng):
    boxes1 = np.sort(rng.uniform(0, 50, (7, 2, 2)), axis=1).transpose(0, 2, 1).reshape(7, 4)[:, [0, 2, 1, 3]]
    boxes2 = np.sort(rng.uniform(0, 50, (9, 2, 2)), axis=1).transpose(0, 2, 1).reshape(9, 4)[:, [0, 2, 1, 3]]
    for border_pixels, d in [("half", 0.0), ("include", 1.0), ("exclude", -1.0)]:
        result = iou(boxes1, boxes2, coords="corners", border_pixels=border_pixels)
        expected = [[box_iou(a, b, d) for b in boxes2] for a in boxes1]
        np.testing.assert_allclose(result, expected, atol=1e-12)


def test_degenerate_union_gives_zero_not_nan():
    point = [5.0, 5.0, 5.0, 5.0]
    assert iou(point, point, coords="corners")[0, 0] == 0.0


@pytest.mark.parametrize(
    "conversion, box, expected, border_pixels",
    [
        ("corners2centroids", [2, 4, 10, 8], [6, 6, 8, 4], "half"),
        ("corners2centroids", [2, 4, 10, 8], [6, 6, 9, 5], "include"),
        ("corners2centroids", [2, 4, 10, 8], [6, 6, 7, 3], "exclude"),
        ("minmax2centroids", [2, 10, 4, 8], [6, 6, 8, 4], "half"),
        ("minmax2centroids", [2, 10, 4, 8], [6, 6, 9, 5], "include"),
        ("centroids2corners", [6, 6, 8, 4], [2, 4, 10, 8], "half"),
        ("centroids2corners", [6, 6, 8, 4], [2, 4, 10, 8], "include"),  # no d on the way back
        ("centroids2minmax", [6, 6, 8, 4], [2, 10, 4, 8], "half"),
        ("corners2minmax", [2, 4, 10, 8], [2, 10, 4, 8], "half"),
        ("minmax2corners", [2, 10, 4, 8], [2, 4, 10, 8], "half"),
    ],
)
def test_conversions_by_hand(conversion, box, expected, border_pixels):
    tensor = np.array([[7.0] + box + [9.0]])  # extra columns before and after stay untouched
    out = convert_coordinates(tensor, 1, conversion, border_pixels)
    np.testing.assert_allclose(out, [[7.0] + expected + [9.0]])
    np.testing.assert_allclose(tensor, [[7.0] + box + [9.0]])  # input not modified


def test_conversion_keeps_float32_and_promotes_ints():
    assert convert_coordinates(np.zeros((2, 4), np.float32), 0, "corners2centroids").dtype == np.float32
    assert convert_coordinates(np.zeros((2, 4), np.int64), 0, "corners2centroids").dtype == np.float64


def test_conversion_on_higher_rank_tensors():
    tensor = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    out = convert_coordinates(tensor, 0, "corners2minmax")
    np.testing.assert_array_equal(out[..., [0, 2, 1, 3]], tensor)


finite = st.floats(-1e3, 1e3, allow_nan=False)
positive = st.floats(0.1, 1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(x=finite, y=finite, w=positive, h=positive, border=st.sampled_from(["half", "include", "exclude"]))
def test_every_conversion_pair_round_trips(x, y, w, h, border):
    corners = np.array([[x, y, x + w, y + h]])
    minmax = convert_coordinates(corners, 0, "corners2minmax")
    np.testing.assert_allclose(convert_coordinates(minmax, 0, "minmax2corners"), corners)
    d = {"half": 0, "include": 1, "exclude": -1}[border]
    # Going to centroids adds d to the size and coming back spreads it over both sides.
    widened = corners + np.array([[-d / 2, -d / 2, d / 2, d / 2]])
    for source, data in [("corners", corners), ("minmax", minmax)]:
        centroids = convert_coordinates(data, 0, f"{source}2centroids", border)
        back = convert_coordinates(centroids, 0, f"centroids2{source}")
        if source == "minmax":
            back = convert_coordinates(back, 0, "minmax2corners")
        np.testing.assert_allclose(back, widened, atol=1e-9)
    np.testing.assert_allclose(
        convert_coordinates2(minmax, 0, "minmax2centroids"), convert_coordinates(minmax, 0, "minmax2centroids")
    )
    centroids = convert_coordinates(minmax, 0, "minmax2centroids")
    np.testing.assert_allclose(convert_coordinates2(centroids, 0, "centroids2minmax"), minmax, atol=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="Expected `conversion` to be one of"):
        convert_coordinates(np.zeros((1, 4)), 0, "corners2corners")
    with pytest.raises(ValueError, match="Expected `conversion` to be one of"):
        convert_coordinates2(np.zeros((1, 4)), 0, "corners2centroids")
    with pytest.raises(ValueError, match=r"Expected `border_pixels` to be one of .*Received: border_pixels='inside'"):
        iou(A, B, border_pixels="inside")
    with pytest.raises(ValueError, match=r"Expected `coords` to be one of .*Received: coords='cornerz'"):
        iou(A, B, coords="cornerz")
    with pytest.raises(ValueError, match="Expected `mode` to be one of"):
        intersection_area(A, B, mode="inner")
    with pytest.raises(ValueError, match=r"`boxes1` to have shape \(4,\) or \(n, 4\)"):
        iou(np.zeros((2, 5)), B)
    with pytest.raises(ValueError, match=r"`boxes2` to have shape"):
        iou(A, np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="broadcastable shapes"):
        iou(np.zeros((2, 4)), np.zeros((3, 4)), mode="element-wise")
