"""Patch sampling: crop and/or pad an image to a patch, deterministically or at random.

A patch is ``(ymin, xmin, height, width)`` in the image's pixel coordinates; it may
extend beyond the image (negative offsets, or larger than the image), in which case
the outside is filled with `background`. That one operation, `CropPad`, serves
cropping, padding ("zoom out", SSD's expand step) and SSD's IoU-constrained random crop.
"""

import cv2
import numpy as np

from ssd_keras.data.transforms.base import (
    LabelsFormat,
    RandomApply,
    copy_labels,
    failed_result,
    prediction_columns,
    result,
)
from ssd_keras.data.transforms.validation import BoundGenerator
from ssd_keras.utils.rng import as_rng

MUST_MATCH = ("h_w", "h_ar", "w_ar")


class PatchCoordinateGenerator:
    """Draws patch coordinates ``(ymin, xmin, height, width)`` (ints) for an image.

    The size comes from two of height, width and aspect ratio (`must_match`): each
    scale is uniform in [min_scale, max_scale] of the image side (the same scale for
    both sides if `scale_uniformly`), the aspect ratio (width / height) uniform in
    [min_aspect_ratio, max_aspect_ratio]; any of `patch_height`, `patch_width`,
    `patch_aspect_ratio` fixes that quantity. The position is uniform over the
    positions where the patch lies inside the image, or, for a patch larger than the
    image, where it contains the image; `patch_ymin` / `patch_xmin` fix it.

    `img_height` and `img_width` are set by the operations that use the generator.

    Raises:
        ValueError: for an unknown `must_match` or empty ranges.
    """

    def __init__(
        self,
        img_height=None,
        img_width=None,
        must_match="h_w",
        min_scale=0.3,
        max_scale=1.0,
        scale_uniformly=False,
        min_aspect_ratio=0.5,
        max_aspect_ratio=2.0,
        patch_ymin=None,
        patch_xmin=None,
        patch_height=None,
        patch_width=None,
        patch_aspect_ratio=None,
        rng=None,
    ):
        if must_match not in MUST_MATCH:
            raise ValueError(
                f"Expected `must_match` to be one of {set(MUST_MATCH)}. Received: must_match={must_match!r}"
            )
        if not 0 < min_scale <= max_scale:
            raise ValueError(
                f"Expected 0 < min_scale <= max_scale. Received: min_scale={min_scale}, max_scale={max_scale}"
            )
        if not 0 < min_aspect_ratio <= max_aspect_ratio:
            raise ValueError(
                f"Expected 0 < min_aspect_ratio <= max_aspect_ratio. Received: {min_aspect_ratio}, {max_aspect_ratio}"
            )
        self.img_height = img_height
        self.img_width = img_width
        self.must_match = must_match
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.scale_uniformly = scale_uniformly
        self.min_aspect_ratio = min_aspect_ratio
        self.max_aspect_ratio = max_aspect_ratio
        self.patch_ymin = patch_ymin
        self.patch_xmin = patch_xmin
        self.patch_height = patch_height
        self.patch_width = patch_width
        self.patch_aspect_ratio = patch_aspect_ratio
        self.rng = as_rng(rng)

    def _scales(self, n):
        return self.rng.uniform(self.min_scale, self.max_scale, n)

    def sample(self, n):
        """`n` independent draws: int array (n, 4) of ``(ymin, xmin, height, width)``."""
        if self.img_height is None or self.img_width is None:
            raise ValueError("PatchCoordinateGenerator needs `img_height` and `img_width` before it is called.")
        h, w = self.img_height, self.img_width
        if self.patch_aspect_ratio is not None:
            ar = np.full(n, float(self.patch_aspect_ratio))
        else:
            ar = self.rng.uniform(self.min_aspect_ratio, self.max_aspect_ratio, n)
        if self.must_match == "h_w":
            scale_h = self._scales(n)
            scale_w = scale_h if self.scale_uniformly else self._scales(n)
            height = np.full(n, float(self.patch_height)) if self.patch_height is not None else scale_h * h
            width = np.full(n, float(self.patch_width)) if self.patch_width is not None else scale_w * w
        elif self.must_match == "h_ar":
            height = np.full(n, float(self.patch_height)) if self.patch_height is not None else self._scales(n) * h
            width = height * ar
        else:
            width = np.full(n, float(self.patch_width)) if self.patch_width is not None else self._scales(n) * w
            height = width / ar
        height = np.maximum(1, np.round(height)).astype(np.int64)
        width = np.maximum(1, np.round(width)).astype(np.int64)
        return np.column_stack(
            [self._offsets(self.patch_ymin, height, h), self._offsets(self.patch_xmin, width, w), height, width]
        )

    def _offsets(self, fixed, patch, image):
        """Uniform integer offsets in [0, image - patch] (or [image - patch, 0] for a patch
        larger than the image), or the fixed offset."""
        if fixed is not None:
            return np.full(len(patch), int(fixed), dtype=np.int64)
        low = np.minimum(0, image - patch)
        high = np.maximum(0, image - patch)
        return low + np.floor(self.rng.uniform(0, 1, len(patch)) * (high - low + 1)).astype(np.int64)

    def __call__(self):
        return tuple(int(v) for v in self.sample(1)[0])


class CropPad(LabelsFormat):
    """Cuts the patch ``(ymin, xmin, height, width)`` out of the image, padding with
    `background` where it extends beyond the image.

    Boxes move by ``(-xmin, -ymin)``; then the optional `box_filter` runs (on the
    patch size) and, if `clip_boxes`, boxes are clipped to ``[0, width - 1] x
    [0, height - 1]``.

    Call arguments:
        image, labels=None (works without labels; the original crashed),
        return_inverter=False: the inverter maps decoded predictions
        ``[class_id, confidence, xmin, ymin, xmax, ymax]`` on the patch back to the image.
    """

    def __init__(
        self,
        patch_ymin,
        patch_xmin,
        patch_height,
        patch_width,
        clip_boxes=True,
        box_filter=None,
        background=(0, 0, 0),
        labels_format=None,
    ):
        if patch_height <= 0 or patch_width <= 0:
            raise ValueError(
                f"Expected a positive patch size. Received: patch_height={patch_height}, patch_width={patch_width}"
            )
        self.own_parts(box_filter=box_filter)
        super().__init__(labels_format)
        self.patch_ymin = int(patch_ymin)
        self.patch_xmin = int(patch_xmin)
        self.patch_height = int(patch_height)
        self.patch_width = int(patch_width)
        self.clip_boxes = clip_boxes
        self.background = background

    def crop_image(self, image):
        """The image cropped (and padded with the background) to the patch."""
        height, width = image.shape[:2]
        y0, x0, ph, pw = self.patch_ymin, self.patch_xmin, self.patch_height, self.patch_width
        # The overlap of the patch and the image, in image coordinates.
        iy0, iy1 = max(0, y0), min(height, y0 + ph)
        ix0, ix1 = max(0, x0), min(width, x0 + pw)
        if iy1 <= iy0 or ix1 <= ix0:  # no overlap: all background
            canvas = np.empty((ph, pw) + image.shape[2:], dtype=image.dtype)
            canvas[...] = (
                np.asarray(self.background, dtype=image.dtype)[: image.shape[2]]
                if image.ndim == 3
                else self.background[0]
            )
            return canvas
        inside = image[iy0:iy1, ix0:ix1]
        borders = (iy0 - y0, y0 + ph - iy1, ix0 - x0, x0 + pw - ix1)  # top, bottom, left, right
        if not any(borders):
            return inside.copy()
        if image.ndim == 3 and image.shape[2] <= 4 and image.dtype in (np.uint8, np.float32, np.float64):
            value = [float(v) for v in self.background][: image.shape[2]]
            return cv2.copyMakeBorder(np.ascontiguousarray(inside), *borders, cv2.BORDER_CONSTANT, value=value)
        canvas = np.empty((ph, pw) + image.shape[2:], dtype=image.dtype)
        canvas[...] = (
            np.asarray(self.background, dtype=image.dtype)[: image.shape[2]] if image.ndim == 3 else self.background[0]
        )
        canvas[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = inside
        return canvas

    def move_labels(self, labels):
        """The boxes in patch coordinates, before filtering and clipping (a copy)."""
        labels = copy_labels(labels)
        labels[:, self.x_columns] -= self.patch_xmin
        labels[:, self.y_columns] -= self.patch_ymin
        return labels

    def __call__(self, image, labels=None, return_inverter=False):
        image = self.crop_image(image)
        columns = prediction_columns(self.labels_format)

        def inverter(predictions):
            predictions = np.array(predictions, dtype=np.float64)
            predictions[:, [columns[0], columns[2]]] += self.patch_xmin
            predictions[:, [columns[1], columns[3]]] += self.patch_ymin
            return predictions

        if labels is not None:
            labels = self.move_labels(labels)
            if self.box_filter is not None:
                labels = self.box_filter(labels, image_height=self.patch_height, image_width=self.patch_width)
            if self.clip_boxes:
                labels[:, self.x_columns] = np.clip(labels[:, self.x_columns], 0, self.patch_width - 1)
                labels[:, self.y_columns] = np.clip(labels[:, self.y_columns], 0, self.patch_height - 1)
        return result(image, labels, inverter, return_inverter)


def compose_crop_pads(first, second):
    """One `CropPad` that does `first` and then `second` (either may be None), valid when
    `first` neither filters nor clips boxes and `second`'s patch lies inside `first`'s
    (then every pixel `second` takes from `first`'s canvas is the same in the image or
    in `first`'s background). SSD's expand-then-crop uses it to skip the canvas."""
    if first is None or second is None:
        return second if first is None else first
    return CropPad(
        first.patch_ymin + second.patch_ymin,
        first.patch_xmin + second.patch_xmin,
        second.patch_height,
        second.patch_width,
        second.clip_boxes,
        second.box_filter,
        first.background,
        second.labels_format,
    )


class Crop(LabelsFormat):
    """Removes `crop_top` .. `crop_right` pixels from the borders (a `CropPad`)."""

    def __init__(
        self, crop_top, crop_bottom, crop_left, crop_right, clip_boxes=True, box_filter=None, labels_format=None
    ):
        self.own_parts(box_filter=box_filter)
        super().__init__(labels_format)
        self.crop_top, self.crop_bottom, self.crop_left, self.crop_right = crop_top, crop_bottom, crop_left, crop_right
        self.clip_boxes = clip_boxes

    def __call__(self, image, labels=None, return_inverter=False):
        height, width = image.shape[:2]
        crop = CropPad(
            self.crop_top,
            self.crop_left,
            height - self.crop_top - self.crop_bottom,
            width - self.crop_left - self.crop_right,
            self.clip_boxes,
            self.box_filter,
            labels_format=self.labels_format,
        )
        return crop(image, labels, return_inverter)


class Pad(LabelsFormat):
    """Adds `pad_top` .. `pad_right` pixels of `background` around the image (a `CropPad`)."""

    def __init__(self, pad_top, pad_bottom, pad_left, pad_right, background=(0, 0, 0), labels_format=None):
        super().__init__(labels_format)
        self.pad_top, self.pad_bottom, self.pad_left, self.pad_right = pad_top, pad_bottom, pad_left, pad_right
        self.background = background

    def __call__(self, image, labels=None, return_inverter=False):
        height, width = image.shape[:2]
        pad = CropPad(
            -self.pad_top,
            -self.pad_left,
            height + self.pad_top + self.pad_bottom,
            width + self.pad_left + self.pad_right,
            clip_boxes=False,
            background=self.background,
            labels_format=self.labels_format,
        )
        return pad(image, labels, return_inverter)


def _identity(predictions):
    return np.array(predictions, dtype=np.float64)


class RandomPatch(RandomApply, LabelsFormat):
    """With probability `prob`, a random patch from `patch_coord_generator`.

    Up to `n_trials_max` patches are drawn; with labels and an `image_validator`, the
    first whose moved boxes it accepts is taken (all trials are drawn and validated
    at once). If none is, the result is ``None`` (image and labels) when `can_fail`,
    else the unchanged input (inverter None).
    """

    def __init__(
        self,
        patch_coord_generator,
        box_filter=None,
        image_validator=None,
        n_trials_max=3,
        clip_boxes=True,
        prob=1.0,
        background=(0, 0, 0),
        can_fail=False,
        labels_format=None,
        rng=None,
    ):
        if not isinstance(patch_coord_generator, PatchCoordinateGenerator):
            raise ValueError("`patch_coord_generator` must be a PatchCoordinateGenerator.")
        RandomApply.__init__(self, prob, rng)
        self.patch_coord_generator = patch_coord_generator
        self.own_parts(box_filter=box_filter, image_validator=image_validator)
        self.n_trials_max = n_trials_max
        self.clip_boxes = clip_boxes
        self.background = background
        self.can_fail = can_fail
        LabelsFormat.__init__(self, labels_format)

    def crop_pad(self, ymin, xmin, height, width):
        """The deterministic `CropPad` for one patch, with this operation's settings."""
        return CropPad(ymin, xmin, height, width, self.clip_boxes, self.box_filter, self.background, self.labels_format)

    def _first_valid(self, patches, labels):
        """The first acceptable patch of `patches`, as a `CropPad`, or None."""
        if len(patches) and (labels is None or self.image_validator is None):
            return self.crop_pad(*patches[0])
        if len(patches):
            passed = np.flatnonzero(self.image_validator.accepts_patches(labels, patches))
            if len(passed):
                return self.crop_pad(*patches[passed[0]])
        return None

    def choose(self, image_height, image_width, labels=None):
        """Decides this call's patch: a `CropPad`, "identity" (not applied), or None (failed)."""
        if not self.should_apply():
            return "identity"
        generator = self.patch_coord_generator
        generator.img_height, generator.img_width = image_height, image_width
        return self._first_valid(generator.sample(max(1, self.n_trials_max)), labels)

    def __call__(self, image, labels=None, return_inverter=False):
        crop = self.choose(image.shape[0], image.shape[1], copy_labels(labels))
        if crop == "identity":
            return result(image, copy_labels(labels), _identity, return_inverter)
        if crop is None:
            if self.can_fail:
                return failed_result(labels is not None, return_inverter)
            return result(image, copy_labels(labels), None, return_inverter)
        return crop(image, labels, return_inverter)


class RandomPatchInf(RandomPatch):
    """SSD's random crop: loops until it returns. Each round, with probability `prob`,
    draws overlap bounds for the validator from `bound_generator` and tries up to
    `n_trials_max` patches (rejecting aspect ratios outside the generator's range);
    otherwise returns the input unchanged."""

    def __init__(
        self,
        patch_coord_generator,
        box_filter=None,
        image_validator=None,
        bound_generator=None,
        n_trials_max=50,
        clip_boxes=True,
        prob=0.857,
        background=(0, 0, 0),
        labels_format=None,
        rng=None,
    ):
        super().__init__(
            patch_coord_generator,
            box_filter,
            image_validator,
            n_trials_max,
            clip_boxes,
            prob,
            background,
            False,
            labels_format,
            rng,
        )
        self.bound_generator = bound_generator

    def choose(self, image_height, image_width, labels=None):
        """Decides this call's patch, drawing until one is valid: a `CropPad`, or "identity" (not
        applied); each trial draws new overlap bounds from `bound_generator`."""
        generator = self.patch_coord_generator
        generator.img_height, generator.img_width = image_height, image_width
        while True:
            if not self.should_apply():
                return "identity"
            if self.bound_generator is not None and self.image_validator is not None:
                self.image_validator.bounds = self.bound_generator()
            patches = generator.sample(max(1, self.n_trials_max))
            ratio = patches[:, 3] / patches[:, 2]
            patches = patches[(generator.min_aspect_ratio <= ratio) & (ratio <= generator.max_aspect_ratio)]
            crop = self._first_valid(patches, labels)
            if crop is not None:
                return crop


class RandomMaxCropFixedAR(LabelsFormat):
    """The largest patch of aspect ratio `patch_aspect_ratio` (width / height) that fits
    in the image, at a random position (validated like `RandomPatch`)."""

    def __init__(
        self,
        patch_aspect_ratio,
        box_filter=None,
        image_validator=None,
        n_trials_max=3,
        clip_boxes=True,
        labels_format=None,
        rng=None,
    ):
        if patch_aspect_ratio <= 0:
            raise ValueError(f"Expected patch_aspect_ratio > 0. Received: {patch_aspect_ratio}")
        self.patch_aspect_ratio = patch_aspect_ratio
        self.random_patch = RandomPatch(
            PatchCoordinateGenerator(rng=as_rng(rng)),
            box_filter,
            image_validator,
            n_trials_max,
            clip_boxes,
            prob=1.0,
            can_fail=False,
            labels_format=labels_format,
            rng=rng,
        )
        self._children = [self.random_patch]
        super().__init__(labels_format)

    def __call__(self, image, labels=None, return_inverter=False):
        height, width = image.shape[:2]
        if width / height > self.patch_aspect_ratio:
            size = (height, max(1, int(round(height * self.patch_aspect_ratio))))
        else:
            size = (max(1, int(round(width / self.patch_aspect_ratio))), width)
        generator = self.random_patch.patch_coord_generator
        generator.patch_height, generator.patch_width = size
        return self.random_patch(image, labels, return_inverter)


class RandomPadFixedAR(LabelsFormat):
    """The least padding (with `background`) that gives the image aspect ratio
    `patch_aspect_ratio`, the image at a random position. (The original under-padded
    for aspect ratios other than 1.)"""

    def __init__(self, patch_aspect_ratio, background=(0, 0, 0), labels_format=None, rng=None):
        if patch_aspect_ratio <= 0:
            raise ValueError(f"Expected patch_aspect_ratio > 0. Received: {patch_aspect_ratio}")
        self.patch_aspect_ratio = patch_aspect_ratio
        self.background = background
        self.random_patch = RandomPatch(
            PatchCoordinateGenerator(rng=as_rng(rng)),
            clip_boxes=False,
            prob=1.0,
            background=background,
            labels_format=labels_format,
            rng=rng,
        )
        self._children = [self.random_patch]
        super().__init__(labels_format)

    def __call__(self, image, labels=None, return_inverter=False):
        height, width = image.shape[:2]
        if width / height < self.patch_aspect_ratio:
            size = (height, max(width, int(round(height * self.patch_aspect_ratio))))
        else:
            size = (max(height, int(round(width / self.patch_aspect_ratio))), width)
        generator = self.random_patch.patch_coord_generator
        generator.patch_height, generator.patch_width = size
        return self.random_patch(image, labels, return_inverter)


__all__ = [
    "BoundGenerator",
    "PatchCoordinateGenerator",
    "CropPad",
    "Crop",
    "Pad",
    "RandomPatch",
    "RandomPatchInf",
    "RandomMaxCropFixedAR",
    "RandomPadFixedAR",
]
