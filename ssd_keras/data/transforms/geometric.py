"""Geometric transformations: resize, flip, translate, scale, rotate, and their
random variants. Each moves the boxes with the pixels.

Coordinates are continuous: pixel column ``i`` spans ``[i, i + 1)``, so a horizontal
flip maps ``x`` to ``W - x`` and a 90 degree rotation is exact. Label coordinates stay
floats (the original rounded them to integers, losing COCO's sub-pixel boxes).
"""

import cv2
import numpy as np

from ssd_keras.data.transforms.base import LabelsFormat, RandomApply, copy_labels, prediction_columns, result

INTERPOLATION_MODES = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_LANCZOS4)


def _identity(predictions):
    return np.array(predictions, dtype=np.float64)


def _filter_and_clip(transform, labels, height, width, clip_boxes):
    """Shared tail of the warping ops: the optional box filter, then clipping to the image."""
    if transform.box_filter is not None:
        labels = transform.box_filter(labels, image_height=height, image_width=width)
    if clip_boxes:
        labels[:, transform.x_columns] = np.clip(labels[:, transform.x_columns], 0, width - 1)
        labels[:, transform.y_columns] = np.clip(labels[:, transform.y_columns], 0, height - 1)
    return labels


class Resize(LabelsFormat):
    """Resizes the image to (height, width) and scales the boxes with it.

    Args:
        height, width: output size.
        interpolation_mode: an OpenCV interpolation flag.
        box_filter: optional `BoxFilter` applied after resizing.
        labels_format: column layout of the labels.

    Call arguments:
        image, labels=None, return_inverter=False: the inverter maps decoded
        predictions ``[class_id, confidence, xmin, ymin, xmax, ymax]`` of the resized
        image back to the original image's coordinates.
    """

    def __init__(self, height, width, interpolation_mode=cv2.INTER_LINEAR, box_filter=None, labels_format=None):
        if int(height) != height or int(width) != width or height < 1 or width < 1:
            raise ValueError(
                f"Expected positive integer `height` and `width`. Received: height={height}, width={width}"
            )
        self.own_parts(box_filter=box_filter)
        super().__init__(labels_format)
        self.out_height = int(height)
        self.out_width = int(width)
        self.interpolation_mode = interpolation_mode

    def _resize(self, image, labels, return_inverter, interpolation_mode):
        img_height, img_width = image.shape[:2]
        image = cv2.resize(image, dsize=(self.out_width, self.out_height), interpolation=interpolation_mode)
        sx, sy = self.out_width / img_width, self.out_height / img_height
        columns = prediction_columns(self.labels_format)

        def inverter(predictions):
            predictions = np.array(predictions, dtype=np.float64)
            predictions[:, [columns[0], columns[2]]] /= sx
            predictions[:, [columns[1], columns[3]]] /= sy
            return predictions

        labels = copy_labels(labels)
        if labels is not None:
            labels[:, self.x_columns] *= sx
            labels[:, self.y_columns] *= sy
            labels = _filter_and_clip(self, labels, self.out_height, self.out_width, clip_boxes=False)
        return result(image, labels, inverter, return_inverter)

    def __call__(self, image, labels=None, return_inverter=False):
        return self._resize(image, labels, return_inverter, self.interpolation_mode)


class ResizeRandomInterp(Resize):
    """`Resize` with an interpolation mode drawn from `interpolation_modes` on each call."""

    def __init__(
        self, height, width, interpolation_modes=INTERPOLATION_MODES, box_filter=None, labels_format=None, rng=None
    ):
        super().__init__(height, width, box_filter=box_filter, labels_format=labels_format)
        self.interpolation_modes = list(interpolation_modes)
        RandomApply.__init__(self, 1.0, rng)

    def __call__(self, image, labels=None, return_inverter=False):
        mode = self.interpolation_modes[self.rng.integers(len(self.interpolation_modes))]
        return self._resize(image, labels, return_inverter, mode)


class Flip(LabelsFormat):
    """Flips horizontally (``x -> W - x``) or vertically (``y -> H - y``)."""

    def __init__(self, dim="horizontal", labels_format=None):
        if dim not in ("horizontal", "vertical"):
            raise ValueError(f"Expected `dim` to be one of {{'horizontal', 'vertical'}}. Received: dim={dim!r}")
        super().__init__(labels_format)
        self.dim = dim

    def __call__(self, image, labels=None, return_inverter=False):
        height, width = image.shape[:2]
        size, axis = (width, 1) if self.dim == "horizontal" else (height, 0)
        low, high = ("xmin", "xmax") if self.dim == "horizontal" else ("ymin", "ymax")
        columns = prediction_columns(self.labels_format)
        pred_low, pred_high = (columns[0], columns[2]) if self.dim == "horizontal" else (columns[1], columns[3])

        def inverter(predictions):  # the flip is its own inverse
            predictions = np.array(predictions, dtype=np.float64)
            predictions[:, [pred_low, pred_high]] = size - predictions[:, [pred_high, pred_low]]
            return predictions

        labels = copy_labels(labels)
        if labels is not None:
            f = self.labels_format
            labels[:, [f[low], f[high]]] = size - labels[:, [f[high], f[low]]]
        if image.ndim == 3 and image.shape[2] <= 4:
            flipped = cv2.flip(image, 1 if axis == 1 else 0)  # a fast contiguous copy
        else:
            flipped = np.ascontiguousarray(np.flip(image, axis=axis))
        return result(flipped, labels, inverter, return_inverter)


class RandomFlip(RandomApply, LabelsFormat):
    """`Flip` with probability `prob`."""

    def __init__(self, dim="horizontal", prob=0.5, labels_format=None, rng=None):
        RandomApply.__init__(self, prob, rng)
        self.flip = Flip(dim, labels_format)
        self._children = [self.flip]
        LabelsFormat.__init__(self, labels_format)
        self.dim = dim

    def __call__(self, image, labels=None, return_inverter=False):
        if self.should_apply():
            return self.flip(image, labels, return_inverter)
        return result(image, copy_labels(labels), _identity, return_inverter)


def _affine_labels(transform, labels, matrix):
    """Boxes through an axis-aligned affine map (translation and/or zoom), as a copy."""
    labels = copy_labels(labels)
    for xc, yc in zip(transform.x_columns, transform.y_columns):  # (xmin, ymin), then (xmax, ymax)
        x, y = labels[:, xc].copy(), labels[:, yc].copy()
        labels[:, xc] = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
        labels[:, yc] = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
    return labels


def _apply_affine(transform, image, labels):
    """Warps the image (constant `background` border) and moves, filters and clips the boxes."""
    height, width = image.shape[:2]
    matrix = transform.matrix(height, width)
    background = tuple(float(b) for b in transform.background)
    image = cv2.warpAffine(image, matrix, dsize=(width, height), borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    if labels is None:
        return image
    labels = _filter_and_clip(transform, _affine_labels(transform, labels, matrix), height, width, transform.clip_boxes)
    return image, labels


class Translate(LabelsFormat):
    """Shifts the image by ``(dy * H, dx * W)`` pixels (rounded), filling with `background`.

    Boxes move by the same whole pixels, then the optional `box_filter` runs and, if
    `clip_boxes`, they are clipped to ``[0, W - 1] x [0, H - 1]``.
    """

    def __init__(self, dy, dx, clip_boxes=True, box_filter=None, background=(0, 0, 0), labels_format=None):
        self.own_parts(box_filter=box_filter)
        super().__init__(labels_format)
        self.dy_rel = dy
        self.dx_rel = dx
        self.clip_boxes = clip_boxes
        self.background = background

    def matrix(self, height, width):
        """The 2x3 affine matrix of the shift for an image of this size."""
        return np.float32([[1, 0, np.round(width * self.dx_rel)], [0, 1, np.round(height * self.dy_rel)]])

    def move_labels(self, labels, height, width):
        """The boxes moved with the pixels, before filtering and clipping (a copy)."""
        return _affine_labels(self, labels, self.matrix(height, width))

    def __call__(self, image, labels=None):
        return _apply_affine(self, image, labels)


class Scale(LabelsFormat):
    """Zooms by `factor` about the image centre (OpenCV's rotation matrix with angle 0)."""

    def __init__(self, factor, clip_boxes=True, box_filter=None, background=(0, 0, 0), labels_format=None):
        if factor <= 0:
            raise ValueError(f"Expected factor > 0. Received: factor={factor}")
        self.own_parts(box_filter=box_filter)
        super().__init__(labels_format)
        self.factor = factor
        self.clip_boxes = clip_boxes
        self.background = background

    def matrix(self, height, width):
        """The 2x3 affine matrix of the scaling about the image centre."""
        return cv2.getRotationMatrix2D(center=(width / 2, height / 2), angle=0, scale=self.factor)

    def move_labels(self, labels, height, width):
        """The boxes moved with the pixels, before filtering and clipping (a copy)."""
        return _affine_labels(self, labels, self.matrix(height, width))

    def __call__(self, image, labels=None):
        return _apply_affine(self, image, labels)


class Rotate(LabelsFormat):
    """Rotates counter-clockwise by 90, 180 or 270 degrees (exact; the canvas turns with it)."""

    def __init__(self, angle, labels_format=None):
        if angle not in (90, 180, 270):
            raise ValueError(f"Expected `angle` to be one of {{90, 180, 270}}. Received: angle={angle!r}")
        super().__init__(labels_format)
        self.angle = angle

    def __call__(self, image, labels=None):
        height, width = image.shape[:2]
        image = np.ascontiguousarray(np.rot90(image, k=self.angle // 90))
        labels = copy_labels(labels)
        if labels is not None:
            f = self.labels_format
            xmin, ymin, xmax, ymax = (labels[:, f[k]].copy() for k in ("xmin", "ymin", "xmax", "ymax"))
            if self.angle == 90:  # (x, y) -> (y, W - x)
                new = (ymin, width - xmax, ymax, width - xmin)
            elif self.angle == 180:  # (x, y) -> (W - x, H - y)
                new = (width - xmax, height - ymax, width - xmin, height - ymin)
            else:  # (x, y) -> (H - y, x)
                new = (height - ymax, xmin, height - ymin, xmax)
            for key, values in zip(("xmin", "ymin", "xmax", "ymax"), new):
                labels[:, f[key]] = values
        return result(image, labels)


class _RandomWarp(RandomApply, LabelsFormat):
    """Base of RandomTranslate and RandomScale: up to `n_trials_max` draws, each checked
    by the optional `image_validator` on the moved boxes; if none passes, the input
    comes back unchanged."""

    def __init__(self, prob, clip_boxes, box_filter, image_validator, n_trials_max, background, labels_format, rng):
        RandomApply.__init__(self, prob, rng)
        self.clip_boxes = clip_boxes
        self.own_parts(box_filter=box_filter, image_validator=image_validator)
        self.n_trials_max = n_trials_max
        self.background = background
        LabelsFormat.__init__(self, labels_format)

    def draw(self):
        """A deterministic transform with random parameters."""
        raise NotImplementedError

    def __call__(self, image, labels=None):
        if not self.should_apply():
            return result(image, copy_labels(labels))
        height, width = image.shape[:2]
        for _ in range(max(1, self.n_trials_max)):
            transform = self.draw()  # built with this operation's labels_format
            if labels is None or self.image_validator is None:
                return transform(image, labels)
            if self.image_validator(transform.move_labels(labels, height, width), height, width):
                return transform(image, labels)
        return result(image, copy_labels(labels))


class RandomTranslate(_RandomWarp):
    """`Translate` with |dy|, |dx| uniform in the given ranges and a random sign, with
    probability `prob`."""

    def __init__(
        self,
        dy_minmax=(0.03, 0.3),
        dx_minmax=(0.03, 0.3),
        prob=0.5,
        clip_boxes=True,
        box_filter=None,
        image_validator=None,
        n_trials_max=3,
        background=(0, 0, 0),
        labels_format=None,
        rng=None,
    ):
        for name, (low, high) in (("dy_minmax", dy_minmax), ("dx_minmax", dx_minmax)):
            if not 0 <= low <= high:
                raise ValueError(f"Expected 0 <= min <= max in `{name}`. Received: {name}={(low, high)}")
        super().__init__(prob, clip_boxes, box_filter, image_validator, n_trials_max, background, labels_format, rng)
        self.dy_minmax = dy_minmax
        self.dx_minmax = dx_minmax

    def draw(self):
        """A `Translate` by a drawn shift (dy, dx), each a fraction of the image size with a random sign."""
        dy = self.rng.uniform(*self.dy_minmax) * self.rng.choice([-1, 1])
        dx = self.rng.uniform(*self.dx_minmax) * self.rng.choice([-1, 1])
        return Translate(dy, dx, self.clip_boxes, self.box_filter, self.background, self.labels_format)


class RandomScale(_RandomWarp):
    """`Scale` with a factor uniform in [min_factor, max_factor], with probability `prob`."""

    def __init__(
        self,
        min_factor=0.5,
        max_factor=1.5,
        prob=0.5,
        clip_boxes=True,
        box_filter=None,
        image_validator=None,
        n_trials_max=3,
        background=(0, 0, 0),
        labels_format=None,
        rng=None,
    ):
        if not 0 < min_factor <= max_factor:
            raise ValueError(f"Expected 0 < min_factor <= max_factor. Received: {min_factor}, {max_factor}")
        super().__init__(prob, clip_boxes, box_filter, image_validator, n_trials_max, background, labels_format, rng)
        self.min_factor = min_factor
        self.max_factor = max_factor

    def draw(self):
        """A `Scale` by a factor drawn between `min_factor` and `max_factor`."""
        factor = self.rng.uniform(self.min_factor, self.max_factor)
        return Scale(factor, self.clip_boxes, self.box_filter, self.background, self.labels_format)


class RandomRotate(RandomApply, LabelsFormat):
    """`Rotate` by an angle drawn from `angles`, with probability `prob`."""

    def __init__(self, angles=(90, 180, 270), prob=0.5, labels_format=None, rng=None):
        for angle in angles:
            Rotate(angle)  # validates
        RandomApply.__init__(self, prob, rng)
        LabelsFormat.__init__(self, labels_format)
        self.angles = list(angles)

    def __call__(self, image, labels=None):
        if not self.should_apply():
            return result(image, copy_labels(labels))
        angle = self.angles[self.rng.integers(len(self.angles))]
        return Rotate(angle, self.labels_format)(image, labels)
