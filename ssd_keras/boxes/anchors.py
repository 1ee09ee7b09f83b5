"""The one source of truth for SSD anchor boxes (default boxes, Liu et al. 2016, §2.2).

`generate_anchor_boxes` computes the anchors of one predictor layer.
`SSDInputEncoder` calls it to build its targets and the `AnchorBoxes` Keras layer
calls it to build the constant it appends to the model output, so both always agree.

The helpers below resolve the per-layer configuration the model builders and the
encoder accept: "one value for every layer, or one per layer" for scales, aspect
ratios, steps and offsets.

Anchor order inside a cell follows the aspect-ratio list, with the second square
box (scale ``sqrt(s_k * s_{k+1})``) inserted right after the first one. For the
SSD300 list ``[1, 2, 1/2, 3, 1/3]`` this is Caffe's prior order (1, 1', 2, 1/2, 3, 1/3),
which the published weights depend on.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from ssd_keras.boxes.geometry import COORDS, check_one_of, convert_coordinates


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def resolve_scales(min_scale, max_scale, scales, n_predictor_layers):
    """Returns the ``n_predictor_layers + 1`` anchor scales as a list of floats.

    Layer ``k`` uses ``scales[k]`` for its boxes and ``sqrt(scales[k] * scales[k + 1])``
    for its second square box; that is why there is one scale more than layers.

    Args:
        min_scale, max_scale: used when `scales` is None: the scales are then
            ``linspace(min_scale, max_scale, n_predictor_layers + 1)``.
        scales: explicit list of ``n_predictor_layers + 1`` positive scales.
        n_predictor_layers: number of predictor layers.

    Raises:
        ValueError: if neither `scales` nor both of `min_scale`/`max_scale` are given,
            if `scales` has the wrong length or a value <= 0, or unless
            ``0 < min_scale <= max_scale``.
    """
    if scales is None:
        if min_scale is None or max_scale is None:
            raise ValueError("Either `min_scale` and `max_scale` or `scales` need to be specified.")
        if not 0 < min_scale <= max_scale:
            raise ValueError(
                f"Expected 0 < min_scale <= max_scale. Received: min_scale={min_scale}, max_scale={max_scale}"
            )
        return [float(s) for s in np.linspace(min_scale, max_scale, n_predictor_layers + 1)]
    scales = [float(s) for s in np.asarray(scales, dtype=np.float64).ravel()]
    if len(scales) != n_predictor_layers + 1:
        raise ValueError(
            f"Expected `scales` to hold {n_predictor_layers + 1} values (one per predictor layer "
            f"plus one). Received: {len(scales)} values, scales={scales}"
        )
    if any(s <= 0 for s in scales):
        raise ValueError(f"Expected every value in `scales` to be > 0. Received: scales={scales}")
    return scales


def resolve_aspect_ratios(aspect_ratios_global, aspect_ratios_per_layer, n_predictor_layers):
    """Returns one list of aspect ratios per predictor layer.

    `aspect_ratios_per_layer` wins over `aspect_ratios_global` when both are given.

    Raises:
        ValueError: if both are None, if the per-layer list has the wrong length,
            or if any aspect ratio is <= 0.
    """
    if aspect_ratios_per_layer is not None:
        if len(aspect_ratios_per_layer) != n_predictor_layers:
            raise ValueError(
                f"Expected `aspect_ratios_per_layer` to hold {n_predictor_layers} lists, one per "
                f"predictor layer. Received: {len(aspect_ratios_per_layer)} lists"
            )
        per_layer = [[float(ar) for ar in ars] for ars in aspect_ratios_per_layer]
    elif aspect_ratios_global is not None:
        per_layer = [[float(ar) for ar in aspect_ratios_global] for _ in range(n_predictor_layers)]
    else:
        raise ValueError("At least one of `aspect_ratios_global` and `aspect_ratios_per_layer` must not be None.")
    for ars in per_layer:
        if len(ars) == 0 or any(ar <= 0 for ar in ars):
            raise ValueError(f"Expected non-empty lists of aspect ratios > 0. Received: {per_layer}")
    return per_layer


def _check_pair(name, value, allow_zero):
    """Validates None, a number or an (h, w) pair; returns it as None, float or 2-tuple."""
    if value is None:
        return None
    if _is_number(value):
        values = (float(value),)
    elif isinstance(value, (list, tuple, np.ndarray)) and len(value) == 2 and all(_is_number(v) for v in value):
        values = tuple(float(v) for v in value)
    else:
        raise ValueError(f"Expected `{name}` to be None, a number or an (h, w) pair. Received: {name}={value!r}")
    if any((v < 0) if allow_zero else (v <= 0) for v in values):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Expected `{name}` values to be {bound}. Received: {name}={value!r}")
    return values[0] if len(values) == 1 else values


def resolve_per_layer(value, n_predictor_layers, name, allow_zero=False):
    """Resolves `steps` or `offsets`: None, one value for every layer, or one per layer.

    Each per-layer entry may be None (derive it), a number (same for height and
    width) or an ``(h, w)`` pair.

    Raises:
        ValueError: if a list has the wrong length or an entry is malformed.
    """
    if value is None:
        return [None] * n_predictor_layers
    if _is_number(value):
        return [_check_pair(name, value, allow_zero)] * n_predictor_layers
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != n_predictor_layers:
        raise ValueError(
            f"Expected `{name}` to be None, a number, or a list with one entry per predictor layer "
            f"({n_predictor_layers}). Received: {name}={value!r}"
        )
    return [_check_pair(f"{name}[{i}]", v, allow_zero) for i, v in enumerate(value)]


def resolve_variances(variances):
    """Returns the four variances as floats.

    Raises:
        ValueError: unless there are exactly four values, all > 0.
    """
    variances = [float(v) for v in np.asarray(variances, dtype=np.float64).ravel()]
    if len(variances) != 4:
        raise ValueError(f"Expected 4 variance values. Received: {len(variances)} values, variances={variances}")
    if any(v <= 0 for v in variances):
        raise ValueError(f"Expected all variances to be > 0. Received: variances={variances}")
    return variances


def n_boxes_per_cell(aspect_ratios, two_boxes_for_ar1):
    """Number of anchors per feature-map cell: one per aspect ratio, plus one if the
    list contains 1 and `two_boxes_for_ar1` is set."""
    extra = 1 if two_boxes_for_ar1 and any(ar == 1 for ar in aspect_ratios) else 0
    return len(aspect_ratios) + extra


def anchor_box_sizes(aspect_ratios, this_scale, next_scale, two_boxes_for_ar1, size):
    """Widths and heights of the anchors of one cell, shape (n_boxes, 2), in pixels.

    ``w = s * size * sqrt(ar)``, ``h = s * size / sqrt(ar)`` with ``size =
    min(img_height, img_width)``; for ``ar == 1`` and `two_boxes_for_ar1` a second
    square box of side ``sqrt(this_scale * next_scale) * size`` follows the first.
    """
    sizes = []
    for ar in aspect_ratios:
        if ar == 1:
            sizes.append((this_scale * size, this_scale * size))
            if two_boxes_for_ar1:
                side = np.sqrt(this_scale * next_scale) * size
                sizes.append((side, side))
        else:
            sizes.append((this_scale * size * np.sqrt(ar), this_scale * size / np.sqrt(ar)))
    return np.array(sizes, dtype=np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class AnchorGeometry:
    """What defines one layer's anchors, in pixels: cell centres, box sizes, step, offset."""

    cy: np.ndarray  # (fm_h,)
    cx: np.ndarray  # (fm_w,)
    wh: np.ndarray  # (n_boxes, 2)
    steps: tuple  # (step_h, step_w)
    offsets: tuple  # (offset_h, offset_w)


def _as_pair(value, default):
    if value is None:
        return default
    if _is_number(value):
        return (float(value), float(value))
    return (float(value[0]), float(value[1]))


def anchor_geometry(
    img_height,
    img_width,
    feature_map_size,
    aspect_ratios,
    this_scale,
    next_scale,
    two_boxes_for_ar1=True,
    this_steps=None,
    this_offsets=None,
):
    """Cell centres and box sizes of one predictor layer (see `generate_anchor_boxes`)."""
    fm_h, fm_w = int(feature_map_size[0]), int(feature_map_size[1])
    if fm_h < 1 or fm_w < 1:
        raise ValueError(f"Expected a feature map of at least 1x1. Received: feature_map_size={feature_map_size}")
    step_h, step_w = _as_pair(
        _check_pair("this_steps", this_steps, allow_zero=False), (img_height / fm_h, img_width / fm_w)
    )
    off_h, off_w = _as_pair(_check_pair("this_offsets", this_offsets, allow_zero=True), (0.5, 0.5))
    cy = np.linspace(off_h * step_h, (off_h + fm_h - 1) * step_h, fm_h)
    cx = np.linspace(off_w * step_w, (off_w + fm_w - 1) * step_w, fm_w)
    size = min(img_height, img_width)
    wh = anchor_box_sizes(aspect_ratios, this_scale, next_scale, two_boxes_for_ar1, size)
    return AnchorGeometry(cy=cy, cx=cx, wh=wh, steps=(step_h, step_w), offsets=(off_h, off_w))


# The first nine arguments are `anchor_geometry`'s, which computes the centres and sizes
# this function turns into boxes (the original's signature, kept).
def generate_anchor_boxes(
    img_height,
    img_width,
    feature_map_size,
    aspect_ratios,
    this_scale,
    next_scale,
    two_boxes_for_ar1=True,
    this_steps=None,
    this_offsets=None,
    clip_boxes=False,
    coords="centroids",
    normalize_coords=False,
):
    """Anchor boxes of one predictor layer.

    Cell ``(i, j)`` is centred at ``((offset_h + i) * step_h, (offset_w + j) * step_w)``
    pixels. The defaults derive the step from the image and feature-map sizes
    (``img / fmap``) and put the centre in the middle of the cell (offset 0.5);
    SSD300's published configuration uses steps ``[8, 16, 32, 64, 100, 300]`` instead.

    Args:
        img_height, img_width: model input size in pixels.
        feature_map_size: ``(fm_h, fm_w)`` of the predictor layer.
        aspect_ratios: list of width/height ratios, e.g. ``[1.0, 2.0, 0.5]``.
        this_scale: scale of this layer, a fraction of ``min(img_height, img_width)``.
        next_scale: scale of the next layer (only for the second square box).
        two_boxes_for_ar1: add the second square box of scale ``sqrt(this * next)``.
        this_steps: None, a number, or an ``(h, w)`` pair of pixel distances between
            neighbouring cell centres.
        this_offsets: None, a number, or an ``(h, w)`` pair: the first centre in
            units of the step.
        clip_boxes: clip corners to ``[0, img_width - 1]`` / ``[0, img_height - 1]``.
        coords: output format, 'centroids', 'corners' or 'minmax'.
        normalize_coords: divide x by `img_width` and y by `img_height`.

    Returns:
        float64 array of shape ``(fm_h, fm_w, n_boxes, 4)``.

    Raises:
        ValueError: for an unknown `coords`, a malformed step or offset, or a
            feature map smaller than 1x1.

    Examples:
        >>> generate_anchor_boxes(300, 300, (1, 1), [1.0], 0.5, 0.5, normalize_coords=True)[0, 0]
        array([[0.5, 0.5, 0.5, 0.5],
               [0.5, 0.5, 0.5, 0.5]])
    """
    check_one_of("coords", coords, COORDS)
    geo = anchor_geometry(
        img_height,
        img_width,
        feature_map_size,
        aspect_ratios,
        this_scale,
        next_scale,
        two_boxes_for_ar1,
        this_steps,
        this_offsets,
    )
    fm_h, fm_w, n_boxes = len(geo.cy), len(geo.cx), len(geo.wh)
    boxes = np.empty((fm_h, fm_w, n_boxes, 4), dtype=np.float64)
    boxes[..., 0] = geo.cx[None, :, None]
    boxes[..., 1] = geo.cy[:, None, None]
    boxes[..., 2] = geo.wh[:, 0]
    boxes[..., 3] = geo.wh[:, 1]
    boxes = convert_coordinates(boxes, 0, "centroids2corners")
    if clip_boxes:
        x = boxes[..., [0, 2]]
        x[x >= img_width] = img_width - 1
        x[x < 0] = 0
        boxes[..., [0, 2]] = x
        y = boxes[..., [1, 3]]
        y[y >= img_height] = img_height - 1
        y[y < 0] = 0
        boxes[..., [1, 3]] = y
    if normalize_coords:
        boxes[..., [0, 2]] /= img_width
        boxes[..., [1, 3]] /= img_height
    if coords == "centroids":
        boxes = convert_coordinates(boxes, 0, "corners2centroids")
    elif coords == "minmax":
        boxes = convert_coordinates(boxes, 0, "corners2minmax")
    return boxes


@dataclass(frozen=True)
class AnchorConfig:
    """The resolved, validated anchor settings of an SSD: one per model, shared by the
    builders (its `AnchorBoxes` layers), `SSDInputEncoder` and the decoders, so that
    they cannot disagree.

    Every per-layer field holds one entry per predictor layer, `scales` one more.
    Build it with `resolve` (from a builder's or the encoder's arguments) or `from_model`
    (from the `AnchorBoxes` layers of a model).
    """

    img_height: int
    img_width: int
    scales: tuple
    aspect_ratios: tuple
    two_boxes_for_ar1: bool
    steps: tuple
    offsets: tuple
    clip_boxes: bool
    variances: tuple
    coords: str
    normalize_coords: bool

    @classmethod
    def resolve(
        cls,
        n_predictor_layers,
        img_height,
        img_width,
        min_scale=0.1,
        max_scale=0.9,
        scales=None,
        aspect_ratios_global=(0.5, 1.0, 2.0),
        aspect_ratios_per_layer=None,
        two_boxes_for_ar1=True,
        steps=None,
        offsets=None,
        clip_boxes=False,
        variances=(0.1, 0.1, 0.2, 0.2),
        coords="centroids",
        normalize_coords=True,
    ):
        """Checks the arguments of the builders and the encoder and resolves the per-layer lists.

        Raises:
            ValueError: for missing scales or aspect ratios, lists of the wrong length,
                variances <= 0, or an unknown `coords` (see the `resolve_*` helpers).
        """
        check_one_of("coords", coords, COORDS)
        freeze = lambda values: tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in values)  # noqa: E731
        return cls(
            img_height=img_height,
            img_width=img_width,
            scales=tuple(resolve_scales(min_scale, max_scale, scales, n_predictor_layers)),
            aspect_ratios=freeze(
                resolve_aspect_ratios(aspect_ratios_global, aspect_ratios_per_layer, n_predictor_layers)
            ),
            two_boxes_for_ar1=bool(two_boxes_for_ar1),
            steps=freeze(resolve_per_layer(steps, n_predictor_layers, "steps")),
            offsets=freeze(resolve_per_layer(offsets, n_predictor_layers, "offsets", allow_zero=True)),
            clip_boxes=bool(clip_boxes),
            variances=tuple(resolve_variances(variances)),
            coords=coords,
            normalize_coords=bool(normalize_coords),
        )

    @classmethod
    def from_model(cls, model):
        """``(config, predictor_sizes)`` read from the `AnchorBoxes` layers of `model`, in
        the order of the model's outputs.

        Raises:
            ValueError: if the model has no `AnchorBoxes` layer, or its layers disagree on
                a model-wide setting.
        """
        layers = [layer for layer in model.layers if type(layer).__name__ == "AnchorBoxes"]
        if not layers:
            raise ValueError(f"Expected an SSD model with AnchorBoxes layers. Received: model {model.name!r} has none")
        shared = ("img_height", "img_width", "two_boxes_for_ar1", "clip_boxes", "coords", "normalize_coords")
        for name in shared + ("variances",):
            values = {repr(getattr(layer, name)) for layer in layers}
            if len(values) > 1:
                raise ValueError(
                    f"The AnchorBoxes layers of model {model.name!r} disagree on `{name}`: {sorted(values)}"
                )
        first = layers[0]
        config = cls.resolve(
            len(layers),
            first.img_height,
            first.img_width,
            scales=[layer.this_scale for layer in layers] + [layers[-1].next_scale],
            aspect_ratios_global=None,
            aspect_ratios_per_layer=[layer.aspect_ratios for layer in layers],
            two_boxes_for_ar1=first.two_boxes_for_ar1,
            steps=[layer.this_steps for layer in layers],
            offsets=[layer.this_offsets for layer in layers],
            clip_boxes=first.clip_boxes,
            variances=first.variances,
            coords=first.coords,
            normalize_coords=first.normalize_coords,
        )
        sizes = np.array([tuple(layer.output.shape[1:3]) for layer in layers], dtype=np.int64)
        return config, sizes

    @property
    def n_layers(self):
        """The number of predictor layers."""
        return len(self.aspect_ratios)

    @property
    def n_boxes(self):
        """Anchors per cell, per layer."""
        return [n_boxes_per_cell(ars, self.two_boxes_for_ar1) for ars in self.aspect_ratios]

    def layer_args(self, i):
        """The arguments of layer `i`'s `AnchorBoxes` (and of `generate_anchor_boxes` but
        the feature-map size)."""
        return dict(
            img_height=self.img_height,
            img_width=self.img_width,
            this_scale=self.scales[i],
            next_scale=self.scales[i + 1],
            aspect_ratios=list(self.aspect_ratios[i]),
            two_boxes_for_ar1=self.two_boxes_for_ar1,
            this_steps=self.steps[i],
            this_offsets=self.offsets[i],
            clip_boxes=self.clip_boxes,
            variances=list(self.variances),
            coords=self.coords,
            normalize_coords=self.normalize_coords,
        )
