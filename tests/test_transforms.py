"""Transformations of ssd_keras/data/transforms/: hand-made cases, pixel/box consistency, inverters."""

import cv2
import numpy as np
import pytest

from ssd_keras.data.augmentation.constant_input_size import DataAugmentationConstantInputSize
from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation, SSDExpand, SSDRandomCrop
from ssd_keras.data.augmentation.satellite import DataAugmentationSatellite
from ssd_keras.data.augmentation.variable_input_size import DataAugmentationVariableInputSize
from ssd_keras.data.transforms.base import run_sequence
from ssd_keras.data.transforms.geometric import (
    Flip,
    RandomFlip,
    RandomRotate,
    RandomScale,
    RandomTranslate,
    Resize,
    ResizeRandomInterp,
    Rotate,
    Scale,
    Translate,
)
from ssd_keras.data.transforms.inverse import apply_inverse_transforms
from ssd_keras.data.transforms.patch_sampling import (
    Crop,
    CropPad,
    Pad,
    PatchCoordinateGenerator,
    RandomMaxCropFixedAR,
    RandomPadFixedAR,
    RandomPatch,
    RandomPatchInf,
)
from ssd_keras.data.transforms.photometric import (
    Brightness,
    ChannelSwap,
    Contrast,
    ConvertColor,
    ConvertDataType,
    ConvertTo3Channels,
    Gamma,
    HistogramEqualization,
    Hue,
    PhotometricDistortions,
    RandomBrightness,
    RandomChannelSwap,
    RandomContrast,
    RandomGamma,
    RandomHistogramEqualization,
    RandomHue,
    RandomSaturation,
    Saturation,
)
from ssd_keras.data.transforms.validation import BoundGenerator, BoxFilter, ImageValidator

H, W = 40, 60
BOX = [1, 5, 10, 25, 20]  # class 1; x 5..25, y 10..20


def _image_with_box(box=BOX, height=H, width=W):
    """Black image with the box's pixels white (columns xmin..xmax-1, rows ymin..ymax-1)."""
    image = np.zeros((height, width, 3), np.uint8)
    _, xmin, ymin, xmax, ymax = (int(v) for v in box)
    image[ymin:ymax, xmin:xmax] = 255
    return image


def _white_extent(image):
    """(xmin, ymin, xmax, ymax) of the pixels brighter than mid-grey, in edge coordinates."""
    ys, xs = np.nonzero(image[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


# ---------------------------------------------------------------- deterministic geometry, by hand


@pytest.mark.parametrize(
    "transform, expected_box, expected_shape",
    [
        (Resize(20, 30), [2.5, 5, 12.5, 10], (20, 30)),  # everything halves
        (Flip("horizontal"), [35, 10, 55, 20], (H, W)),  # x -> 60 - x
        (Flip("vertical"), [5, 20, 25, 30], (H, W)),  # y -> 40 - y
        (Translate(dy=0.25, dx=0.5), [35, 20, 55, 30], (H, W)),  # +10 rows, +30 columns
        (Scale(0.5), [17.5, 15, 27.5, 20], (H, W)),  # about the centre (30, 20)
        (Rotate(90), [10, 35, 20, 55], (W, H)),  # (x, y) -> (y, 60 - x)
        (Rotate(180), [35, 20, 55, 30], (H, W)),
        (Rotate(270), [20, 5, 30, 25], (W, H)),  # (x, y) -> (40 - y, x)
        (CropPad(5, 3, 20, 30), [2, 5, 22, 15], (20, 30)),
        (Crop(5, 15, 3, 27), [2, 5, 22, 15], (20, 30)),
        (Pad(2, 3, 4, 5), [9, 12, 29, 22], (45, 69)),
    ],
)
def test_deterministic_geometry_by_hand(transform, expected_box, expected_shape):
    image = _image_with_box()
    out, labels = transform(image, np.array([BOX]))
    assert out.shape[:2] == expected_shape
    np.testing.assert_allclose(labels[0, 1:], expected_box)
    assert labels[0, 0] == 1
    if not isinstance(transform, (Scale, Resize)):  # integer moves: the white pixels are exactly the box
        np.testing.assert_array_equal(_white_extent(out), expected_box)


def test_translate_clips_and_filters():
    out, labels = Translate(dy=0.0, dx=-0.25)(
        _image_with_box(), np.array([BOX, [2, 50, 0, 60, 10]], float)
    )  # 15 px left
    np.testing.assert_allclose(labels, [[1, 0, 10, 10, 20], [2, 35, 0, 45, 10]])  # clipped at 0
    _, labels = Translate(0, -0.25, box_filter=BoxFilter(check_min_area=False))(
        _image_with_box(), np.array([BOX], float)
    )
    assert len(labels) == 1  # centre (0, 15) still inside
    _, labels = Translate(0, -0.4, box_filter=BoxFilter(check_min_area=False))(
        _image_with_box(), np.array([BOX], float)
    )
    assert len(labels) == 0  # centre -9 left the image


def test_labels_stay_floats_and_other_columns_survive():
    labels = np.array([[3, 10.25, 5.5, 20.75, 15.125]])
    _, out = Resize(80, 120)(np.zeros((H, W, 3), np.uint8), labels)
    np.testing.assert_allclose(out, [[3, 20.5, 11, 41.5, 30.25]])  # the original rounded these to ints
    custom = {"xmin": 0, "ymin": 1, "xmax": 2, "ymax": 3, "class_id": 4}
    _, out = Flip(labels_format=custom)(np.zeros((H, W, 3), np.uint8), np.array([[5, 10, 25, 20, 7]]))
    np.testing.assert_allclose(out, [[35, 10, 55, 20, 7]])


def test_crop_pad_and_every_op_without_labels():
    image = _image_with_box()
    for op in (
        CropPad(-2, -3, 50, 70, background=(9, 8, 7)),
        Crop(1, 2, 3, 4),
        Pad(1, 1, 1, 1),
        Resize(10, 10),
        Flip(),
        Rotate(90),
        Translate(0.1, 0.1),
        Scale(1.2),
    ):
        out = op(image)
        assert isinstance(out, np.ndarray) and out.ndim == 3  # the original crashed on Crop/Pad without labels
    padded = CropPad(-2, -3, 50, 70, background=(9, 8, 7))(image)
    np.testing.assert_array_equal(padded[0, 0], [9, 8, 7])
    np.testing.assert_array_equal(padded[2:42, 3:63], image)
    outside = CropPad(100, 100, 5, 5, background=(1, 2, 3))(image)
    np.testing.assert_array_equal(outside, np.broadcast_to([1, 2, 3], (5, 5, 3)))


def test_empty_labels_pass_through_every_transform():
    image = _image_with_box()
    empty = np.zeros((0, 5))
    ops = [
        Resize(20, 30),
        Flip(),
        Translate(0.1, 0.1),
        Scale(0.8),
        Rotate(90),
        CropPad(0, 0, 20, 20),
        RandomPatch(PatchCoordinateGenerator(rng=0), rng=0),
        SSDDataAugmentation(rng=0),
        DataAugmentationConstantInputSize(rng=0),
        DataAugmentationVariableInputSize(30, 30, rng=0),
    ]
    for op in ops:
        _, labels = op(image, empty)
        assert labels.shape == (0, 5)
    _, labels = Flip()(image, [])
    assert labels.shape == (0, 5)


# ---------------------------------------------------------------- photometric, by hand


def test_photometric_ops_by_hand():
    pixel = np.array([[[100.0, 150.0, 250.0]]], np.float32)
    np.testing.assert_allclose(Brightness(20)(pixel), [[[120, 170, 255]]])  # clipped at 255
    np.testing.assert_allclose(Contrast(2.0)(pixel), [[[72.5, 172.5, 255]]])  # 127.5 + 2 (x - 127.5)
    np.testing.assert_allclose(Saturation(2.0)(pixel), [[[100, 255, 250]]])
    np.testing.assert_allclose(Hue(100)(pixel), [[[20, 150, 250]]])  # (100 + 100) mod 180
    np.testing.assert_array_equal(ConvertDataType("uint8")(np.array([[[1.5, 2.4, 300.0]]])), [[[2, 2, 255]]])
    np.testing.assert_array_equal(ChannelSwap([2, 0, 1])(pixel), [[[250, 100, 150]]])
    # Gamma 2 brightens: 255 * (64 / 255) ** 0.5 = 127.75 -> 128. (The original raised NameError.)
    np.testing.assert_array_equal(Gamma(2.0)(np.array([[[64, 0, 255]]], np.uint8)), [[[128, 0, 255]]])
    assert RandomGamma(prob=1.0, rng=0)(np.full((2, 2, 3), 64, np.uint8)).dtype == np.uint8
    gray = ConvertColor("RGB", "GRAY", keep_3ch=True)(np.array([[[255, 0, 0]]], np.uint8))
    np.testing.assert_array_equal(gray, [[[76, 76, 76]]])  # 0.299 * 255
    hsv = ConvertColor("RGB", "HSV")(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8))
    np.testing.assert_array_equal(hsv[0, :, 0], [0, 60])  # OpenCV hue units: degrees / 2
    np.testing.assert_array_equal(ConvertColor("HSV", "RGB")(hsv), [[[255, 0, 0], [0, 255, 0]]])
    assert ConvertTo3Channels()(np.zeros((2, 2), np.uint8)).shape == (2, 2, 3)
    assert ConvertTo3Channels()(np.zeros((2, 2, 4), np.uint8)).shape == (2, 2, 3)
    equalized = HistogramEqualization()(
        np.dstack([np.zeros((2, 2), np.uint8)] * 2 + [np.array([[10, 20], [30, 40]], np.uint8)])
    )
    np.testing.assert_array_equal(equalized[..., 2], [[0, 85], [170, 255]])


def test_photometric_distortions_equal_the_float_chain():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for brightness, contrast, saturation, hue in [(20.3, 1.3, 0.7, 10.5), (-31.9, 0.55, 1.45, -17.2)]:
        chain = [
            ConvertTo3Channels(),
            ConvertDataType("float32"),
            Brightness(brightness),
            Contrast(contrast),
            ConvertDataType("uint8"),
            ConvertColor("RGB", "HSV"),
            ConvertDataType("float32"),
            Saturation(saturation),
            Hue(hue),
            ConvertDataType("uint8"),
            ConvertColor("HSV", "RGB"),
        ]
        expected = run_sequence(chain, image, None, False)[0]
        fused = PhotometricDistortions(
            (brightness,) * 2 + (1.0,), (contrast,) * 2 + (1.0,), (saturation,) * 2 + (1.0,), (18, 1.0), rng=0
        )
        fused.random_hue.lower = fused.random_hue.upper = hue
        seed = next(s for s in range(100) if np.random.default_rng(s).integers(2) == 0)  # the contrast-first order
        fused.rng = np.random.default_rng(seed)
        for op in (fused.random_brightness, fused.random_contrast, fused.random_saturation, fused.random_hue):
            op.rng = fused.rng
        np.testing.assert_array_equal(fused(image), expected)


def test_random_photometric_ops_respect_prob_and_seed():
    image = np.full((4, 4, 3), 100, np.float32)
    for op_class in (RandomBrightness, RandomContrast, RandomSaturation, RandomHue, RandomChannelSwap):
        np.testing.assert_array_equal(op_class(prob=0.0, rng=1)(image), image)
    a = [RandomBrightness(prob=1.0, rng=7)(image)[0, 0, 0] for _ in range(1)]
    b = [RandomBrightness(prob=1.0, rng=7)(image)[0, 0, 0] for _ in range(1)]
    assert a == b and a[0] != 100
    assert RandomHistogramEqualization(prob=1.0, rng=0)(np.full((2, 2, 3), 7, np.uint8)).shape == (2, 2, 3)


# ---------------------------------------------------------------- validation utils


def test_box_filter_and_image_validator_by_hand():
    labels = np.array([[1, 0, 0, 10, 10], [2, 5, 5, 5, 9], [3, 0, 0, 3, 3], [4, 55, 35, 75, 45]], float)
    np.testing.assert_array_equal(BoxFilter(check_overlap=False)(labels)[:, 0], [1, 4])  # degenerate 2, area 9 < 16
    center = BoxFilter(check_min_area=False, check_degenerate=False)(labels, H, W)
    np.testing.assert_array_equal(center[:, 0], [1, 2, 3])  # box 4's centre (65, 40) is outside
    # 'area': box 4 has (59 - 55) * (39 - 35) = 16 of 200 inside (clipped at W - 1, H - 1).
    area = BoxFilter(
        check_min_area=False, check_degenerate=False, overlap_criterion="area", overlap_bounds=(0.05, 1.0)
    )(labels, H, W)
    np.testing.assert_array_equal(area[:, 0], [1, 3, 4])  # box 2 has zero area
    iou = BoxFilter(check_min_area=False, check_degenerate=False, overlap_criterion="iou", overlap_bounds=(0.04, 1.0))(
        labels, H, W
    )
    np.testing.assert_array_equal(iou[:, 0], [1])  # 100 / 2400 = 0.0417
    assert ImageValidator(n_boxes_min=3)(labels, H, W) and not ImageValidator(n_boxes_min=4)(labels, H, W)
    assert not ImageValidator(n_boxes_min="all")(labels, H, W)
    validator = ImageValidator(overlap_criterion="iou", bounds=(0.5, 1.0))
    # Patch (0, 0, 10, 10) is box 1 itself (IoU 1); patch (0, 0, 40, 60) gives IoU 100 / 2400.
    np.testing.assert_array_equal(validator.accepts_patches(labels, [[0, 0, 10, 10], [0, 0, 40, 60]]), [True, False])
    assert BoundGenerator(((0.2, None),), rng=0)() == (0.2, 1.0)


# ---------------------------------------------------------------- random ops: pixels and boxes agree


def _assert_box_matches_pixels(image, labels, tolerance):
    assert len(labels) == 1
    box = labels[0, 1:].copy()
    height, width = image.shape[:2]
    assert (
        np.all(box[[0, 2]] >= 0)
        and np.all(box[[0, 2]] <= width)
        and np.all(box[[1, 3]] >= 0)
        and np.all(box[[1, 3]] <= height)
    )
    # clip_boxes clips to [0, W - 1] x [0, H - 1] as the original did: a box cut by the
    # right or bottom border ends one pixel before the image does.
    box[2] += box[2] == width - 1
    box[3] += box[3] == height - 1
    np.testing.assert_allclose(_white_extent(image), box, atol=tolerance)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "make, tolerance",
    [
        (lambda rng: RandomFlip(prob=0.5, rng=rng), 0),
        (lambda rng: RandomRotate(prob=0.7, rng=rng), 0),
        (lambda rng: RandomTranslate(dy_minmax=(0, 0.2), dx_minmax=(0, 0.2), prob=1.0, rng=rng), 0),
        (lambda rng: RandomScale(0.8, 1.2, prob=1.0, rng=rng), 1.5),
        (
            lambda rng: RandomPatch(
                PatchCoordinateGenerator(min_scale=0.8, max_scale=1.5, rng=rng),
                image_validator=ImageValidator(overlap_criterion="area", bounds=(1.0, 1.0)),
                n_trials_max=50,
                rng=rng,
            ),
            0,
        ),
        (
            lambda rng: ResizeRandomInterp(
                80, 50, interpolation_modes=[cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_AREA], rng=rng
            ),
            1.5,
        ),
        (
            lambda rng: RandomMaxCropFixedAR(
                1.0,
                image_validator=ImageValidator(overlap_criterion="area", bounds=(1.0, 1.0)),
                n_trials_max=50,
                rng=rng,
            ),
            0,
        ),
        (lambda rng: RandomPadFixedAR(2.0, rng=rng), 0),
    ],
    ids=["flip", "rotate", "translate", "scale", "patch", "resize", "max_crop", "pad_ar"],
)
def test_random_ops_keep_boxes_on_their_pixels(make, tolerance, seed):
    rng = np.random.default_rng(seed)
    # x from 5..19 to 30..44, y from 2..9 to 25..34 in the 40 x 60 image (never ending at W - 1 or H - 1)
    box = [1, rng.integers(5, 20), rng.integers(2, 10), rng.integers(30, 45), rng.integers(25, 35)]
    out, labels = make(seed)(_image_with_box(box), np.array([box], float))
    _assert_box_matches_pixels(out, labels, tolerance)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("chain", ["ssd", "constant", "variable", "satellite"])
def test_chains_keep_boxes_inside_and_on_their_pixels(chain, seed):
    rng = np.random.default_rng(seed)
    x0, y0 = rng.integers(5, 25), rng.integers(5, 15)
    box = [1, x0, y0, x0 + 20, y0 + 15]
    make = {
        "ssd": lambda: SSDDataAugmentation(60, 60, rng=seed),
        "constant": lambda: DataAugmentationConstantInputSize(
            random_brightness=(0, 0, 0), random_contrast=(1, 1, 0), rng=seed
        ),
        "variable": lambda: DataAugmentationVariableInputSize(
            50, 50, random_brightness=(0, 0, 0), random_contrast=(1, 1, 0), rng=seed
        ),
        "satellite": lambda: DataAugmentationSatellite(
            50, 50, random_brightness=(0, 0, 0), random_contrast=(1, 1, 0), rng=seed
        ),
    }[chain]
    image = _image_with_box(box)
    out, labels = make()(image, np.array([box], float))
    height, width = out.shape[:2]
    assert out.dtype == np.uint8
    for row in labels:
        assert 0 <= row[1] < row[3] <= width and 0 <= row[2] < row[4] <= height
    if len(labels) and chain != "ssd":
        # Saturation/hue leave white white; the box is where the white pixels are, up to
        # resampling (2 px) and the one source pixel lost by clipping to W - 1 (enlarged by the resize).
        np.testing.assert_allclose(_white_extent(out), labels[0, 1:], atol=4.0)
    assert make()(image).ndim == 3  # without labels (the original crashed for two of these)


def test_ssd_chain_is_reproducible_with_a_seed():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    labels = np.array([[1, 10, 10, 40, 30], [2, 30, 20, 65, 45]], float)
    a = [SSDDataAugmentation(60, 60, rng=42)(image, labels) for _ in range(1)]
    first = SSDDataAugmentation(60, 60, rng=42)
    second = SSDDataAugmentation(60, 60, rng=42)
    for _ in range(5):
        (ia, la), (ib, lb) = first(image, labels), second(image, labels)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
    assert a[0][0].shape == (60, 60, 3)


def test_expand_then_crop_as_one_patch_equals_the_two_steps():
    # SSDDataAugmentation skips the expand canvas; the explicit two-step version gives the same.
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    labels = np.array([[1, 5, 5, 20, 25]], float)
    for seed in range(10):
        expand, crop = SSDExpand(rng=seed), SSDRandomCrop(rng=seed + 100)
        step1 = expand(image, labels)
        two_steps = crop(*step1)
        expand, crop = SSDExpand(rng=seed), SSDRandomCrop(rng=seed + 100)
        e = expand.expand.choose(30, 40, labels)
        e = None if e == "identity" else e
        moved = labels if e is None else e.move_labels(labels)
        c = crop.random_crop.choose(*(((30, 40)) if e is None else (e.patch_height, e.patch_width)), moved)
        from ssd_keras.data.transforms.patch_sampling import compose_crop_pads

        patch = compose_crop_pads(e, None if c == "identity" else c)
        one_step = (image, labels) if patch is None else patch(image, labels)
        np.testing.assert_array_equal(one_step[0], two_steps[0])
        np.testing.assert_allclose(one_step[1], two_steps[1])


# ---------------------------------------------------------------- inverters


def test_inverters_map_predictions_back():
    image = _image_with_box()
    # A prediction equal to the transformed ground truth must map back to the original box.
    for op in (Resize(30, 90), CropPad(5, 3, 20, 30), Pad(2, 3, 4, 5), Crop(2, 1, 3, 4), Flip(), Flip("vertical")):
        out, labels, inverter = op(image, np.array([BOX], float), return_inverter=True)
        prediction = np.array([[labels[0, 0], 0.9, *labels[0, 1:]]])
        back = apply_inverse_transforms([prediction], [[inverter]])[0]
        np.testing.assert_allclose(back[0, 2:], BOX[1:], atol=1e-9)
        assert back[0, 1] == 0.9
    for seed in range(10):
        chain = SSDDataAugmentation(60, 60, rng=seed)
        labels = np.array([BOX], float)
        out, new_labels, inverter = chain(_image_with_box(), labels, return_inverter=True)
        if (
            len(new_labels) and np.all(new_labels[0, 1:] > 0) and new_labels[0, 3] < 59 and new_labels[0, 4] < 59
        ):  # not clipped
            prediction = np.array([[1, 0.5, *new_labels[0, 1:]]])
            np.testing.assert_allclose(
                apply_inverse_transforms([prediction], [[inverter]])[0][0, 2:], BOX[1:], atol=1e-6
            )
    batch = np.zeros((2, 3, 6))
    assert apply_inverse_transforms(batch, [[Resize(10, 10)(image, return_inverter=True)[1]], []]).shape == (2, 3, 6)


def test_errors():
    with pytest.raises(ValueError, match="Expected `dim` to be one of"):
        Flip("diagonal")
    with pytest.raises(ValueError, match="Expected `angle` to be one of"):
        Rotate(45)
    with pytest.raises(ValueError, match="must_match"):
        PatchCoordinateGenerator(must_match="hw")
    with pytest.raises(ValueError, match="random_scale"):
        DataAugmentationConstantInputSize(random_scale=(1.0, 2.0, 0.5))
    with pytest.raises(ValueError, match="0 <= prob <= 1"):
        RandomFlip(prob=1.5)
    with pytest.raises(ValueError, match="`rng`"):
        RandomFlip(rng="seed")
    with pytest.raises(NotImplementedError, match="GRAY to RGB"):
        ConvertColor("GRAY", "RGB")
    with pytest.raises(ValueError, match="n_boxes_min"):
        ImageValidator(n_boxes_min=0)
    with pytest.raises(ValueError, match="PatchCoordinateGenerator needs"):
        PatchCoordinateGenerator()()
    with pytest.raises(ValueError, match="lacks"):
        Flip(labels_format={"xmin": 0})
    with pytest.raises(ValueError, match="Expected labels of shape"):
        Flip()(np.zeros((4, 4, 3)), np.zeros(5))
    assert RandomPatchInf(PatchCoordinateGenerator(rng=0), prob=0.0)(np.zeros((4, 4, 3))).shape == (4, 4, 3)
