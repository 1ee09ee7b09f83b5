"""Checks on boxes and images: `BoxFilter` removes boxes, `ImageValidator` accepts or
rejects a whole image (used by the random patch, translate and scale operations), and
`BoundGenerator` draws the overlap bounds of SSD's random crop."""

import numpy as np

from ssd_keras.boxes.geometry import border_offset, check_one_of, iou_corners
from ssd_keras.data.transforms.base import LabelsFormat, copy_labels
from ssd_keras.utils.rng import as_rng

OVERLAP_CRITERIA = ("center_point", "iou", "area")


class BoundGenerator:
    """Draws one ``(lower, upper)`` pair from `sample_space` (None: 0.0 resp. 1.0).

    Args:
        sample_space: list of pairs.
        weights: probabilities of the pairs (uniform if None).
        rng: seed or `numpy.random.Generator`.

    Raises:
        ValueError: for malformed pairs or weights that do not match.
    """

    def __init__(
        self,
        sample_space=((0.1, None), (0.3, None), (0.5, None), (0.7, None), (0.9, None), (None, None)),
        weights=None,
        rng=None,
    ):
        if weights is not None and len(weights) != len(sample_space):
            raise ValueError("`weights` must hold one probability per entry of `sample_space`.")
        self.sample_space = []
        for bounds in sample_space:
            if len(bounds) != 2:
                raise ValueError(f"Every entry of `sample_space` must be a (lower, upper) pair. Received: {bounds!r}")
            lower = 0.0 if bounds[0] is None else float(bounds[0])
            upper = 1.0 if bounds[1] is None else float(bounds[1])
            if lower > upper:
                raise ValueError(f"Expected lower <= upper in `sample_space`. Received: {bounds!r}")
            self.sample_space.append((lower, upper))
        self.weights = weights
        self.rng = as_rng(rng)

    def __call__(self):
        i = self.rng.choice(len(self.sample_space), p=self.weights)
        return self.sample_space[i]


def _bounds(overlap_bounds):
    return overlap_bounds() if isinstance(overlap_bounds, BoundGenerator) else tuple(overlap_bounds)


class BoxFilter(LabelsFormat):
    """Removes boxes that are degenerate, too small, or do not overlap the image enough.

    Args:
        check_overlap, check_min_area, check_degenerate: which checks run.
        overlap_criterion: 'center_point' (the box centre lies in ``[0, W - 1] x
            [0, H - 1]``), 'iou' (IoU with the image box in ``(lower, upper]``) or
            'area' (the fraction of the box inside the image in ``[lower, upper]``;
            ``> 0`` when lower is 0).
        overlap_bounds: ``(lower, upper)`` or a `BoundGenerator` drawn on each call.
        min_area: smallest box area kept, in square pixels.
        labels_format: column layout of the labels.
        border_pixels: 'half', 'include' or 'exclude', for the 'iou' criterion.

    Call arguments:
        labels: array (k, >= 5).
        image_height, image_width: needed for the overlap check.

    Returns:
        the kept rows (a copy).
    """

    def __init__(
        self,
        check_overlap=True,
        check_min_area=True,
        check_degenerate=True,
        overlap_criterion="center_point",
        overlap_bounds=(0.3, 1.0),
        min_area=16,
        labels_format=None,
        border_pixels="half",
    ):
        check_one_of("overlap_criterion", overlap_criterion, OVERLAP_CRITERIA)
        border_offset(border_pixels)
        if not isinstance(overlap_bounds, BoundGenerator) and (
            len(overlap_bounds) != 2 or overlap_bounds[0] > overlap_bounds[1]
        ):
            raise ValueError(
                f"Expected `overlap_bounds` to be (lower, upper) or a BoundGenerator. Received: {overlap_bounds!r}"
            )
        super().__init__(labels_format)
        self.check_overlap = check_overlap
        self.check_min_area = check_min_area
        self.check_degenerate = check_degenerate
        self.overlap_criterion = overlap_criterion
        self.overlap_bounds = overlap_bounds
        self.min_area = min_area
        self.border_pixels = border_pixels

    def keep_mask(self, labels, image_height=None, image_width=None):
        """Boolean mask of the boxes that pass."""
        f = self.labels_format
        xmin, ymin, xmax, ymax = (labels[:, f[k]] for k in ("xmin", "ymin", "xmax", "ymax"))
        keep = np.ones(len(labels), dtype=bool)
        if self.check_degenerate:
            keep &= (xmax > xmin) & (ymax > ymin)
        if self.check_min_area:
            keep &= (xmax - xmin) * (ymax - ymin) >= self.min_area
        if self.check_overlap:
            if image_height is None or image_width is None:
                raise ValueError("BoxFilter's overlap check needs `image_height` and `image_width`.")
            lower, upper = _bounds(self.overlap_bounds)
            keep &= overlap_mask(
                xmin,
                ymin,
                xmax,
                ymax,
                image_height,
                image_width,
                self.overlap_criterion,
                lower,
                upper,
                self.border_pixels,
            )
        return keep

    def __call__(self, labels, image_height=None, image_width=None):
        labels = copy_labels(labels)
        return labels[self.keep_mask(labels, image_height, image_width)]


def overlap_mask(xmin, ymin, xmax, ymax, image_height, image_width, criterion, lower, upper, border_pixels="half"):
    """Which boxes overlap the image ``[0, W] x [0, H]`` enough under `criterion` (see
    `BoxFilter`). All arguments broadcast, so one call can test many patches at once."""
    if criterion == "iou":
        zero = np.zeros_like(image_width, dtype=np.float64)
        image_box = np.stack(np.broadcast_arrays(zero, zero, image_width, image_height), axis=-1)
        boxes = np.stack(np.broadcast_arrays(xmin, ymin, xmax, ymax), axis=-1)
        overlap = iou_corners(image_box, boxes, "element-wise", border_offset(border_pixels))
        return (lower < overlap) & (overlap <= upper)
    if criterion == "area":
        d = border_offset(border_pixels)
        area = (xmax - xmin + d) * (ymax - ymin + d)
        inside = np.maximum(0.0, np.minimum(xmax, image_width - 1) - np.maximum(xmin, 0) + d) * np.maximum(
            0.0, np.minimum(ymax, image_height - 1) - np.maximum(ymin, 0) + d
        )
        fraction = np.divide(
            inside, area, out=np.zeros(np.broadcast_shapes(np.shape(inside), np.shape(area))), where=area > 0
        )
        low_ok = fraction > lower if lower == 0 else fraction >= lower
        return low_ok & (fraction <= upper)
    cx = (xmin + xmax) / 2
    cy = (ymin + ymax) / 2
    return (cx >= 0) & (cx <= image_width - 1) & (cy >= 0) & (cy <= image_height - 1)


class ImageValidator(LabelsFormat):
    """Accepts an image if at least `n_boxes_min` of its boxes (or 'all') overlap it enough.

    Args:
        overlap_criterion, bounds, labels_format, border_pixels: as `BoxFilter`.
        n_boxes_min: an int > 0, or 'all'.

    Call arguments:
        labels, image_height, image_width.

    Returns:
        bool.
    """

    def __init__(
        self,
        overlap_criterion="center_point",
        bounds=(0.3, 1.0),
        n_boxes_min=1,
        labels_format=None,
        border_pixels="half",
    ):
        if not (n_boxes_min == "all" or (isinstance(n_boxes_min, (int, np.integer)) and n_boxes_min > 0)):
            raise ValueError(
                f"Expected `n_boxes_min` to be a positive integer or 'all'. Received: n_boxes_min={n_boxes_min!r}"
            )
        self.box_filter = BoxFilter(
            check_overlap=True,
            check_min_area=False,
            check_degenerate=False,
            overlap_criterion=overlap_criterion,
            overlap_bounds=bounds,
            labels_format=labels_format,
            border_pixels=border_pixels,
        )
        self._children = [self.box_filter]
        super().__init__(labels_format)
        self.overlap_criterion = overlap_criterion
        self.n_boxes_min = n_boxes_min
        self.border_pixels = border_pixels

    @property
    def bounds(self):
        """``(lower, upper)`` or a `BoundGenerator`; SSD's random crop sets it per round."""
        return self.box_filter.overlap_bounds

    @bounds.setter
    def bounds(self, bounds):
        """The overlap bounds, a pair or a `BoundGenerator`."""
        self.box_filter.overlap_bounds = bounds

    def __call__(self, labels, image_height, image_width):
        labels = copy_labels(labels)
        n_kept = int(self.box_filter.keep_mask(labels, image_height, image_width).sum())
        return self._enough(n_kept, len(labels))

    def _enough(self, n_kept, n_boxes):
        if self.n_boxes_min == "all":
            return n_kept == n_boxes
        return n_kept >= self.n_boxes_min

    def accepts_patches(self, labels, patches):
        """The validator's verdict on many candidate patches of one image at once.

        Args:
            labels: (k, >= 5) boxes in image coordinates.
            patches: (n, 4) int array of ``(ymin, xmin, height, width)``.

        Returns:
            bool array (n,): for each patch, whether the boxes moved into it pass.
        """
        labels = copy_labels(labels)
        f = self.labels_format
        patches = np.asarray(patches, dtype=np.float64).reshape(-1, 4)
        py, px, ph, pw = (patches[:, i : i + 1] for i in range(4))
        xmin, xmax = labels[:, f["xmin"]] - px, labels[:, f["xmax"]] - px
        ymin, ymax = labels[:, f["ymin"]] - py, labels[:, f["ymax"]] - py
        lower, upper = _bounds(self.box_filter.overlap_bounds)
        n_kept = overlap_mask(
            xmin, ymin, xmax, ymax, ph, pw, self.overlap_criterion, lower, upper, self.border_pixels
        ).sum(axis=1)
        return np.array([self._enough(n, len(labels)) for n in n_kept], dtype=bool)
