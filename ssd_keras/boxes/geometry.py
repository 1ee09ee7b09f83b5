"""Box coordinate conversions, intersection areas and intersection-over-union.

Three coordinate formats are used throughout the library (§1 of the spec):

* ``'centroids'``: ``(cx, cy, w, h)``
* ``'corners'``:   ``(xmin, ymin, xmax, ymax)``
* ``'minmax'``:    ``(xmin, xmax, ymin, ymax)``

``border_pixels`` says whether the pixels on a box's border belong to it, which
changes every ``max - min`` width or height by ``d``:

* ``'half'``    -> ``d = 0`` (continuous coordinates; the default)
* ``'include'`` -> ``d = +1`` (Pascal VOC's integer pixel boxes: a box from pixel
  10 to pixel 20 is 11 pixels wide)
* ``'exclude'`` -> ``d = -1``

Everything here is pure NumPy and broadcasts; there are no Python loops over boxes.
"""

import numpy as np

BORDER_PIXELS = {"half": 0.0, "include": 1.0, "exclude": -1.0}
COORDS = ("centroids", "corners", "minmax")
IOU_MODES = ("outer_product", "element-wise")
CONVERSIONS = (
    "minmax2centroids",
    "centroids2minmax",
    "corners2centroids",
    "centroids2corners",
    "minmax2corners",
    "corners2minmax",
)


def check_one_of(name, value, allowed):
    """Raises a `ValueError` in the Keras idiom if `value` is not in `allowed`."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"Expected `{name}` to be one of {{{choices}}}. Received: {name}={value!r}")
    return value


def border_offset(border_pixels):
    """Returns ``d``, the amount added to every ``max - min`` difference.

    Raises:
        ValueError: if `border_pixels` is not 'half', 'include' or 'exclude'.
    """
    check_one_of("border_pixels", border_pixels, tuple(BORDER_PIXELS))
    return BORDER_PIXELS[border_pixels]


def _as_float(tensor):
    """A float copy of `tensor`: float inputs keep their precision, others become float64."""
    array = np.asarray(tensor)
    if np.issubdtype(array.dtype, np.floating):
        return array.copy()
    return array.astype(np.float64)


def convert_coordinates(tensor, start_index, conversion, border_pixels="half"):
    """Converts box coordinates between the 'centroids', 'minmax' and 'corners' formats.

    Args:
        tensor: array of any rank whose last axis holds, from `start_index` on, the
            four coordinates of a box. Other entries of the last axis are copied as is.
        start_index: index in the last axis of the first of the four coordinates.
        conversion: one of 'minmax2centroids', 'centroids2minmax', 'corners2centroids',
            'centroids2corners', 'minmax2corners', 'corners2minmax'.
        border_pixels: 'half', 'include' or 'exclude'. Only the conversions *to*
            'centroids' use it: ``w = xmax - xmin + d``. The way back uses
            ``xmin = cx - w / 2`` without ``d``, as the original did.

    Returns:
        A float copy of `tensor` with the four coordinates converted (float inputs keep
        their dtype, other inputs become float64).

    Raises:
        ValueError: for an unknown `conversion` or `border_pixels`.

    Examples:
        >>> convert_coordinates(np.array([[0., 0., 10., 20.]]), 0, 'corners2centroids')
        array([[ 5., 10., 10., 20.]])
    """
    check_one_of("conversion", conversion, CONVERSIONS)
    d = border_offset(border_pixels)
    out = _as_float(tensor)
    i = start_index
    src = out[..., i : i + 4].copy()
    if conversion == "minmax2centroids":
        xmin, xmax, ymin, ymax = np.moveaxis(src, -1, 0)
        out[..., i : i + 4] = np.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin + d, ymax - ymin + d], -1)
    elif conversion == "corners2centroids":
        xmin, ymin, xmax, ymax = np.moveaxis(src, -1, 0)
        out[..., i : i + 4] = np.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin + d, ymax - ymin + d], -1)
    elif conversion == "centroids2minmax":
        cx, cy, w, h = np.moveaxis(src, -1, 0)
        out[..., i : i + 4] = np.stack([cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2], -1)
    elif conversion == "centroids2corners":
        cx, cy, w, h = np.moveaxis(src, -1, 0)
        out[..., i : i + 4] = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    else:  # 'minmax2corners' and 'corners2minmax' both swap the middle two entries.
        out[..., i + 1] = src[..., 2]
        out[..., i + 2] = src[..., 1]
    return out


def convert_coordinates2(tensor, start_index, conversion):
    """Matrix-multiplication variant of `convert_coordinates` for minmax <-> centroids.

    Kept for compatibility with the original; it has no `border_pixels` argument and
    gives the same result as `convert_coordinates(..., border_pixels='half')`.

    Raises:
        ValueError: if `conversion` is not 'minmax2centroids' or 'centroids2minmax'.
    """
    check_one_of("conversion", conversion, ("minmax2centroids", "centroids2minmax"))
    if conversion == "minmax2centroids":
        # Row vector (xmin, xmax, ymin, ymax) times M gives (cx, cy, w, h).
        matrix = np.array([[0.5, 0.0, -1.0, 0.0], [0.5, 0.0, 1.0, 0.0], [0.0, 0.5, 0.0, -1.0], [0.0, 0.5, 0.0, 1.0]])
    else:
        # Row vector (cx, cy, w, h) times M gives (xmin, xmax, ymin, ymax).
        matrix = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [-0.5, 0.5, 0.0, 0.0], [0.0, 0.0, -0.5, 0.5]])
    out = _as_float(tensor)
    out[..., start_index : start_index + 4] = out[..., start_index : start_index + 4] @ matrix
    return out


def to_corners(boxes, coords):
    """Returns `boxes` (last axis 4) as float corners; 'centroids' use c -/+ w / 2."""
    if coords == "corners":
        return _as_float(boxes)
    return convert_coordinates(boxes, 0, f"{coords}2corners")


def _prepare_pair(boxes1, boxes2, coords, mode):
    check_one_of("mode", mode, IOU_MODES)
    check_one_of("coords", coords, COORDS)
    boxes1 = np.asarray(boxes1)
    boxes2 = np.asarray(boxes2)
    if boxes1.ndim == 1:
        boxes1 = boxes1[None, :]
    if boxes2.ndim == 1:
        boxes2 = boxes2[None, :]
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Expected `{name}` to have shape (4,) or (n, 4). Received: {name}.shape={boxes.shape}")
    if mode == "element-wise":
        try:
            np.broadcast_shapes(boxes1.shape, boxes2.shape)
        except ValueError:
            raise ValueError(
                "In 'element-wise' mode `boxes1` and `boxes2` must have broadcastable shapes. "
                f"Received: boxes1.shape={boxes1.shape}, boxes2.shape={boxes2.shape}"
            ) from None
    return to_corners(boxes1, coords), to_corners(boxes2, coords)


def _pairwise_corners(corners1, corners2, mode):
    """Splits two corner arrays into coordinate arrays that broadcast as `mode` asks."""
    c1 = np.moveaxis(corners1, -1, 0)
    c2 = np.moveaxis(corners2, -1, 0)
    if mode == "outer_product":
        c1 = c1[:, :, None]
        c2 = c2[:, None, :]
    return c1, c2


def intersection_corners(corners1, corners2, mode, d):
    """Intersection areas of boxes already in corners format; no argument checks.

    ``side = max(0, min(max1, max2) - max(min1, min2) + d)``.
    """
    (x1a, y1a, x2a, y2a), (x1b, y1b, x2b, y2b) = _pairwise_corners(corners1, corners2, mode)
    width = np.maximum(0.0, np.minimum(x2a, x2b) - np.maximum(x1a, x1b) + d)
    height = np.maximum(0.0, np.minimum(y2a, y2b) - np.maximum(y1a, y1b) + d)
    return width * height


def iou_corners(corners1, corners2, mode, d):
    """IoU of boxes already in corners format; no argument checks.

    The border offset ``d`` enters the intersection and both areas alike (the original
    left it out of the intersection). A pair whose union is not positive has IoU 0.
    """
    intersection = intersection_corners(corners1, corners2, mode, d)
    (x1a, y1a, x2a, y2a), (x1b, y1b, x2b, y2b) = _pairwise_corners(corners1, corners2, mode)
    area_a = (x2a - x1a + d) * (y2a - y1a + d)
    area_b = (x2b - x1b + d) * (y2b - y1b + d)
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def intersection_area(boxes1, boxes2, coords="centroids", mode="outer_product", border_pixels="half"):
    """Intersection areas of two sets of boxes.

    Args:
        boxes1: array of shape (4,) or (m, 4).
        boxes2: array of shape (4,) or (n, 4).
        coords: 'centroids', 'corners' or 'minmax'; the format of both inputs.
        mode: 'outer_product' gives an (m, n) array of every pair; 'element-wise'
            pairs row i of `boxes1` with row i of `boxes2` (shapes must broadcast)
            and gives an (m,) array.
        border_pixels: 'half', 'include' or 'exclude' (see the module docstring).

    Returns:
        float array of intersection areas, (m, n) or (m,).

    Raises:
        ValueError: for an unknown `coords`, `mode` or `border_pixels`, or inputs
            that are not (4,) / (k, 4) arrays.

    Examples:
        >>> intersection_area([0, 0, 10, 10], [5, 5, 15, 15], coords='corners')
        array([[25.]])
    """
    d = border_offset(border_pixels)
    corners1, corners2 = _prepare_pair(boxes1, boxes2, coords, mode)
    return intersection_corners(corners1, corners2, mode, d)


def intersection_area_(boxes1, boxes2, coords="corners", mode="outer_product", border_pixels="half"):
    """`intersection_area` for callers that know their input is well formed.

    Same result as `intersection_area`; note the different default, ``coords='corners'``,
    kept from the original.
    """
    return intersection_area(boxes1, boxes2, coords=coords, mode=mode, border_pixels=border_pixels)


def iou(boxes1, boxes2, coords="centroids", mode="outer_product", border_pixels="half"):
    """Intersection over union (Jaccard index) of two sets of boxes.

    ``iou = intersection / (area1 + area2 - intersection)`` where widths and heights
    are ``max - min + d`` for the intersection and both areas alike.

    Args:
        boxes1: array of shape (4,) or (m, 4).
        boxes2: array of shape (4,) or (n, 4).
        coords: 'centroids', 'corners' or 'minmax'; the format of both inputs.
        mode: 'outer_product' -> (m, n); 'element-wise' -> (m,).
        border_pixels: 'half', 'include' or 'exclude'.

    Returns:
        float array of IoU values in [0, 1]. Pairs with an empty union give 0.

    Raises:
        ValueError: as `intersection_area`.

    Examples:
        >>> iou([0, 0, 10, 10], [5, 5, 15, 15], coords='corners')  # 25 / (100 + 100 - 25)
        array([[0.14285714]])
    """
    d = border_offset(border_pixels)
    corners1, corners2 = _prepare_pair(boxes1, boxes2, coords, mode)
    return iou_corners(corners1, corners2, mode, d)
