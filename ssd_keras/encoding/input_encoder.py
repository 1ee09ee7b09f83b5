"""`SSDInputEncoder`: turns ground-truth boxes into the targets `SSDLoss` trains on.

For each image, every anchor of the model is either matched to a ground-truth box
(a positive, whose target is the box encoded as offsets from the anchor), left as
background (a negative), or made neutral (ignored by the loss) when it overlaps a
box too much to be background but too little to be matched.

The output has the model's layout, ``(batch, n_boxes_total, n_classes + 1 + 12)``::

    [ one-hot classes (background at index `background_id`) | 4 encoded offsets | 4 anchor coords | 4 variances ]

Neutral anchors have an all-zero one-hot vector, which `SSDLoss` counts neither as
positive nor as negative.

How the matching is computed: the IoU between a box and the anchors of one predictor
layer and aspect ratio factorises into an x part and a y part over the anchor grid,
and an anchor whose size is too different from the box can never reach the lowest
IoU that matters (``min(pos_iou_threshold, neg_iou_limit)``). The encoder therefore
evaluates the IoU only where it can matter, for the whole batch at once, and falls
back to a full row of IoUs only for the few boxes that overlap no anchor that well.
The result is the same as the dense computation of the original.
"""

import sys
import threading

import numpy as np

from ssd_keras.boxes.anchors import AnchorConfig, anchor_geometry, generate_anchor_boxes, n_boxes_per_cell
from ssd_keras.boxes.coding import encode_boxes
from ssd_keras.boxes.geometry import (
    border_offset,
    check_one_of,
    convert_coordinates,
    to_corners,
)
from ssd_keras.boxes.layout import ANCHORS, N_BOX_CHANNELS, OFFSETS, VARIANCES, n_classes_of
from ssd_keras.boxes.matching import greedy_bipartite_from_best
from ssd_keras.errors import DegenerateBoxError

MATCHING_TYPES = ("multi", "bipartite")


class _AnchorLayer:
    """The anchors of one predictor layer, in separable form.

    An anchor's x extent depends only on its grid column and box type, its y extent
    only on its grid row and box type, so the IoU of a box with every anchor of the
    layer is ``iy[row, box] * ix[col, box] / union``, laid out in the model's
    (row, col, box) order.
    """

    def __init__(self, corners, base, d):
        # corners: (fm_h, fm_w, n_boxes, 4) anchors in corners format.
        self.x1 = corners[0, :, :, 0]  # (fm_w, n_boxes)
        self.x2 = corners[0, :, :, 2] + d
        self.y1 = corners[:, 0, :, 1]  # (fm_h, n_boxes)
        self.y2 = corners[:, 0, :, 3] + d
        w = self.x2 - self.x1
        h = self.y2 - self.y1
        self.area = h[:, None, :] * w[None, :, :]  # (fm_h, fm_w, n_boxes)
        self.base = base
        self.n_boxes = corners.shape[2]
        # Flat anchor index of (row, col) relative to the layer, before adding the box type.
        fm_h, fm_w = corners.shape[:2]
        self.cell_index = ((np.arange(fm_h)[:, None] * fm_w + np.arange(fm_w)[None, :]) * self.n_boxes)[..., None]
        # Per box type: (w_min, w_max, h_min, h_max) over the grid (they differ only when clipped).
        self.ranges = np.stack([w.min(axis=0), w.max(axis=0), h.min(axis=0), h.max(axis=0)], axis=1)

    def iou(self, boxes, box_area, types=slice(None)):
        """IoU of `boxes` (k, 4; corners with ``d`` added to xmax/ymax) with the anchors
        of the box `types` (default all) of the layer: (k, fm_h, fm_w, n_types)."""
        ix = np.minimum(boxes[:, 2, None, None], self.x2[:, types]) - np.maximum(
            boxes[:, 0, None, None], self.x1[:, types]
        )
        iy = np.minimum(boxes[:, 3, None, None], self.y2[:, types]) - np.maximum(
            boxes[:, 1, None, None], self.y1[:, types]
        )
        np.maximum(ix, 0, out=ix)
        np.maximum(iy, 0, out=iy)
        inter = iy[:, :, None, :] * ix[:, None, :, :]
        union = box_area[:, None, None, None] + self.area[..., types] - inter
        # union >= inter >= 0 for boxes of non-negative area; where it is 0, so is inter.
        inter /= np.maximum(union, _TINY)
        return inter


def _iou_upper_bound(type_ranges, box_w, box_h, box_area):
    """Largest IoU any anchor of each box type can reach with each box: (k, n_types).

    ``inter <= min(w_max, w) * min(h_max, h)`` and ``union >= w_min * h_min + area - inter``;
    IoU grows with the intersection and shrinks with the anchor's area, so their
    ratio bounds it. Without clipping all anchors of a box type have one size and the
    bound is the exact IoU of the two boxes centred on each other.
    """
    w_lo, w_hi, h_lo, h_hi = type_ranges.T
    inter = np.minimum(w_hi, box_w[:, None]) * np.minimum(h_hi, box_h[:, None])
    denominator = w_lo * h_lo + box_area[:, None] - inter
    return np.divide(inter, denominator, out=np.ones_like(inter), where=denominator > 0)


class _OutputPool:
    """Recycles the encoder's output arrays once the caller has let go of them.

    An SSD300 target batch of 32 is 37 MB; a fresh array of that size costs more in
    page faults than the whole encoding. A returned array is reused only when this
    pool holds the last reference to it (no variable, view, memoryview or tensor
    anywhere refers to it), which CPython's reference count tells exactly. The count
    this code sees for an otherwise unreferenced object is measured once at import.
    """

    def __init__(self, size=2):
        self._arrays = []
        self._size = size
        self._lock = threading.Lock()

    def take(self, shape, dtype):
        with self._lock:
            for i in range(len(self._arrays)):
                if self._arrays[i].shape == shape and _refcount(self._arrays, i) == _UNREFERENCED:
                    return self._arrays.pop(i)
        return np.empty(shape, dtype=dtype)

    def give(self, array):
        with self._lock:
            self._arrays.append(array)
            del self._arrays[: -self._size]


def _refcount(items, i):
    return sys.getrefcount(items[i]) if hasattr(sys, "getrefcount") else -1


_UNREFERENCED = _refcount([object()], 0)
_TINY = np.finfo(np.float64).tiny


class SSDInputEncoder:
    """Encodes ground-truth labels into SSD training targets.

    Args:
        img_height, img_width: model input size in pixels.
        n_classes: number of positive classes (background is added internally).
        predictor_sizes: ``(fm_h, fm_w)`` of each predictor layer, in the order of the
            model's outputs; e.g. ``[(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]``
            for SSD300. A model built with ``return_predictor_sizes=True`` returns them.
        min_scale, max_scale, scales: anchor scales (see
            `anchor_utils.resolve_scales`); `scales` wins if given.
        aspect_ratios_global, aspect_ratios_per_layer: anchor aspect ratios; the
            per-layer lists win if given.
        two_boxes_for_ar1: add a second square anchor of scale ``sqrt(s_k * s_{k+1})``.
        steps, offsets: None or one entry per predictor layer (a number or an ``(h, w)``
            pair); see `anchor_utils.generate_anchor_boxes`.
        clip_boxes: clip anchors to the image.
        variances: four values > 0 that divide the encoded offsets.
        matching_type: 'multi' (bipartite, then every anchor with IoU >=
            `pos_iou_threshold`) or 'bipartite' (one anchor per ground-truth box).
        pos_iou_threshold: minimum IoU for a 'multi' match.
        neg_iou_limit: unmatched anchors whose best IoU is >= this become neutral.
        border_pixels: 'half', 'include' or 'exclude', for the IoU.
        coords: 'centroids', 'corners' or 'minmax': the box format the model predicts.
        normalize_coords: encode relative coordinates (divide by the image size).
        background_id: index of the background class in the one-hot vectors.

    Call arguments:
        ground_truth_labels: list with one entry per image: an array ``(k, 5)`` of
            ``(class_id, xmin, ymin, xmax, ymax)`` in absolute pixels, class ids in
            ``1 .. n_classes``. An image may have no boxes (an empty array).
        diagnostics: also return the matched anchors (the targets with zero offsets,
            which decode to the anchors themselves).

    Returns:
        float32 array ``(batch, n_boxes_total, n_classes + 1 + 12)``, and with
        ``diagnostics=True`` a second array of the same shape.

    Raises:
        ValueError: for an invalid configuration, or labels that are not ``(k, 5)``,
            hold NaN, or use a class id outside ``1 .. n_classes``.
        DegenerateBoxError: for a box with ``xmax <= xmin`` or ``ymax <= ymin``;
            the message names the batch item and the box.

    Examples:
        >>> encoder = SSDInputEncoder(300, 300, n_classes=20,
        ...     predictor_sizes=[(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)],
        ...     scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
        ...     aspect_ratios_per_layer=[[1, 2, 0.5]] + [[1, 2, 0.5, 3, 1 / 3]] * 3 + [[1, 2, 0.5]] * 2,
        ...     steps=[8, 16, 32, 64, 100, 300], offsets=[0.5] * 6, neg_iou_limit=0.5)
        >>> encoder([np.array([[12, 146, 52, 386, 264]])]).shape
        (1, 8732, 33)
    """

    # The anchor arguments are twins of the builders' and `AnchorBoxes`' (the original's
    # public signatures); one function resolves them all (`AnchorConfig.resolve`).
    def __init__(
        self,
        img_height,
        img_width,
        n_classes,
        predictor_sizes,
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
        matching_type="multi",
        pos_iou_threshold=0.5,
        neg_iou_limit=0.3,
        border_pixels="half",
        coords="centroids",
        normalize_coords=True,
        background_id=0,
    ):
        predictor_sizes = np.array(predictor_sizes, dtype=np.int64)
        if predictor_sizes.ndim == 1:
            predictor_sizes = predictor_sizes[None, :]
        if predictor_sizes.ndim != 2 or predictor_sizes.shape[1] != 2 or np.any(predictor_sizes < 1):
            raise ValueError(
                "Expected `predictor_sizes` to be a list of (height, width) pairs >= 1. "
                f"Received: predictor_sizes={predictor_sizes.tolist()}"
            )
        if img_height <= 0 or img_width <= 0:
            raise ValueError(
                f"Expected a positive image size. Received: img_height={img_height}, img_width={img_width}"
            )
        if int(n_classes) != n_classes or n_classes < 1:
            raise ValueError(f"Expected `n_classes` to be a positive integer. Received: n_classes={n_classes}")
        n_layers = predictor_sizes.shape[0]
        check_one_of("matching_type", matching_type, MATCHING_TYPES)
        d = border_offset(border_pixels)
        if not 0 <= background_id <= n_classes:
            raise ValueError(
                f"Expected 0 <= background_id <= n_classes. Received: background_id={background_id}, "
                f"n_classes={n_classes}"
            )
        # The anchor settings, resolved and checked as the model builders do (one code path).
        config = AnchorConfig.resolve(
            n_layers,
            img_height,
            img_width,
            min_scale,
            max_scale,
            scales,
            aspect_ratios_global,
            aspect_ratios_per_layer,
            two_boxes_for_ar1,
            steps,
            offsets,
            clip_boxes,
            variances,
            coords,
            normalize_coords,
        )
        self.anchor_config = config

        self.img_height = img_height
        self.img_width = img_width
        self.n_classes = int(n_classes) + 1  # + 1 for the background class
        self.predictor_sizes = predictor_sizes
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.scales = list(config.scales)
        self.aspect_ratios = [list(a) for a in config.aspect_ratios]
        self.aspect_ratios_global = None if aspect_ratios_global is None else list(aspect_ratios_global)
        self.aspect_ratios_per_layer = (
            None if aspect_ratios_per_layer is None else [list(a) for a in aspect_ratios_per_layer]
        )
        self.two_boxes_for_ar1 = two_boxes_for_ar1
        self.steps = list(config.steps)
        self.offsets = list(config.offsets)
        self.clip_boxes = clip_boxes
        self.variances = np.array(config.variances)
        self.matching_type = matching_type
        self.pos_iou_threshold = pos_iou_threshold
        self.neg_iou_limit = neg_iou_limit
        self.border_pixels = border_pixels
        self.coords = coords
        self.normalize_coords = normalize_coords
        self.background_id = background_id

        per_layer_n = [n_boxes_per_cell(ars, two_boxes_for_ar1) for ars in self.aspect_ratios]
        self.n_boxes = per_layer_n if aspect_ratios_per_layer is not None else per_layer_n[0]

        self.boxes_list = []
        self.wh_list_diag, self.steps_diag, self.offsets_diag, self.centers_diag = [], [], [], []
        corners_list = []
        for i in range(n_layers):
            layer_args = dict(
                img_height=img_height,
                img_width=img_width,
                feature_map_size=predictor_sizes[i],
                aspect_ratios=self.aspect_ratios[i],
                this_scale=self.scales[i],
                next_scale=self.scales[i + 1],
                two_boxes_for_ar1=two_boxes_for_ar1,
                this_steps=self.steps[i],
                this_offsets=self.offsets[i],
            )
            geometry = anchor_geometry(**layer_args)
            self.wh_list_diag.append(geometry.wh)
            self.steps_diag.append(geometry.steps)
            self.offsets_diag.append(geometry.offsets)
            self.centers_diag.append((geometry.cy, geometry.cx))
            layer_args.update(clip_boxes=clip_boxes, normalize_coords=normalize_coords)
            corners = generate_anchor_boxes(coords="corners", **layer_args)
            corners_list.append(corners)
            self.boxes_list.append(
                convert_coordinates(corners, 0, f"corners2{coords}") if coords != "corners" else corners
            )

        # Flat anchors (n_boxes_total, 4) in the model's C order of (row, col, box).
        self._anchors = np.concatenate([b.reshape(-1, 4) for b in self.boxes_list])
        self.n_boxes_total = len(self._anchors)
        # The IoU sees the anchors as the original's `iou(coords=self.coords)` did: converted
        # back to corners, then with `d` added to xmax and ymax (see `_iou_corners`).
        iou_corners = to_corners(self._anchors, coords)
        iou_corners[:, 2:] += d
        self._anchor_iou_columns = [np.ascontiguousarray(iou_corners[:, c]) for c in range(4)]
        self._anchor_iou_area = (iou_corners[:, 2] - iou_corners[:, 0]) * (iou_corners[:, 3] - iou_corners[:, 1])
        self._layers = []
        base = 0
        for corners in corners_list:
            iou_view = (
                to_corners(convert_coordinates(corners, 0, f"corners2{coords}"), coords)
                if coords != "corners"
                else corners
            )
            self._layers.append(_AnchorLayer(iou_view, base, d))
            base += corners[..., 0].size
        self._type_ranges = np.concatenate([layer.ranges for layer in self._layers])
        self._type_slices = np.cumsum([0] + per_layer_n)
        # One row of the output for an image without boxes: all background, zero offsets.
        template = np.zeros((self.n_boxes_total, self.n_classes + N_BOX_CHANNELS), dtype=np.float32)
        template[:, background_id] = 1.0
        template[:, ANCHORS] = self._anchors
        template[:, VARIANCES] = self.variances
        self._template = template
        self._outputs = _OutputPool()

    @classmethod
    def from_model(cls, model, **matching_args):
        """The encoder whose anchors are those of `model`'s `AnchorBoxes` layers.

        Image size, scales, aspect ratios, steps, offsets, clipping, variances, `coords`
        and `normalize_coords` are read from the model (as the decoding layers get them),
        `predictor_sizes` and `n_classes` from its shapes, so model and encoder cannot
        disagree.

        Args:
            model: an SSD built by `ssd_300`, `ssd_512` or `build_model`, in any mode.
            matching_args: the encoder's own arguments: `matching_type`,
                `pos_iou_threshold`, `neg_iou_limit`, `border_pixels`, `background_id`.

        Raises:
            ValueError: if the model has no `AnchorBoxes` layer, or `matching_args`
                holds an anchor setting (it comes from the model).

        Examples:
            >>> from ssd_keras.models.ssd7 import build_model
            >>> model = build_model((64, 64, 3), n_classes=3, scales=[0.2, 0.4, 0.6, 0.8, 0.95])
            >>> encoder = SSDInputEncoder.from_model(model, pos_iou_threshold=0.5, neg_iou_limit=0.5)
            >>> encoder.n_boxes_total == model.output.shape[1]
            True
        """
        allowed = {"matching_type", "pos_iou_threshold", "neg_iou_limit", "border_pixels", "background_id"}
        unknown = set(matching_args) - allowed
        if unknown:
            raise ValueError(
                f"SSDInputEncoder.from_model takes only the matching arguments {sorted(allowed)}; the anchor "
                f"settings come from the model. Received: {sorted(unknown)}"
            )
        config, sizes = AnchorConfig.from_model(model)
        return cls(
            config.img_height,
            config.img_width,
            n_classes_of(model),
            sizes,
            scales=list(config.scales),
            aspect_ratios_global=None,
            aspect_ratios_per_layer=[list(a) for a in config.aspect_ratios],
            two_boxes_for_ar1=config.two_boxes_for_ar1,
            steps=list(config.steps),
            offsets=list(config.offsets),
            clip_boxes=config.clip_boxes,
            variances=list(config.variances),
            coords=config.coords,
            normalize_coords=config.normalize_coords,
            **matching_args,
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_outputs"] = None  # buffers and locks stay with this process
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._outputs = _OutputPool()

    # ------------------------------------------------------------------ anchors

    def generate_anchor_boxes_for_layer(
        self,
        feature_map_size,
        aspect_ratios,
        this_scale,
        next_scale,
        this_steps=None,
        this_offsets=None,
        diagnostics=False,
    ):
        """Anchors of one predictor layer with this encoder's settings.

        Returns:
            ``(fm_h, fm_w, n_boxes, 4)`` in the encoder's `coords`; with
            ``diagnostics=True`` also ``wh_list, (step_h, step_w), (offset_h, offset_w)``
            in the original's order ``boxes, centers (cy, cx), wh_list, steps, offsets``.
        """
        layer_args = dict(
            img_height=self.img_height,
            img_width=self.img_width,
            feature_map_size=feature_map_size,
            aspect_ratios=aspect_ratios,
            this_scale=this_scale,
            next_scale=next_scale,
            two_boxes_for_ar1=self.two_boxes_for_ar1,
            this_steps=this_steps,
            this_offsets=this_offsets,
        )
        boxes = generate_anchor_boxes(
            clip_boxes=self.clip_boxes, coords=self.coords, normalize_coords=self.normalize_coords, **layer_args
        )
        if not diagnostics:
            return boxes
        geometry = anchor_geometry(**layer_args)
        return boxes, (geometry.cy, geometry.cx), geometry.wh, geometry.steps, geometry.offsets

    def generate_encoding_template(self, batch_size, diagnostics=False):
        """The targets of `batch_size` images without boxes.

        Shape ``(batch_size, n_boxes_total, n_classes + 12)``: one-hot zeros with
        the background set, zero offsets, the anchors and the variances. (The
        original put the anchors in the offset slot as a placeholder; they encode
        to zero offsets, which is what this template holds directly.)
        """
        template = np.empty((batch_size,) + self._template.shape, dtype=np.float32)
        template[...] = self._template
        if diagnostics:
            return template, template.copy()
        return template

    # ------------------------------------------------------------------ encoding

    def _check_labels(self, ground_truth_labels):
        """Validates the labels; returns (boxes (K, 5) float64, image index (K,), counts (B,))."""
        per_image = []
        for i, labels in enumerate(ground_truth_labels):
            labels = np.asarray(labels, dtype=np.float64)
            if labels.size == 0:
                labels = np.zeros((0, 5))
            elif labels.ndim != 2 or labels.shape[1] != 5:
                raise ValueError(
                    f"Expected the labels of batch item {i} to have shape (k, 5) with columns "
                    f"(class_id, xmin, ymin, xmax, ymax). Received: shape={labels.shape}"
                )
            elif len(labels) > self.n_boxes_total:
                raise ValueError(
                    f"Batch item {i} has {len(labels)} boxes but the model only has {self.n_boxes_total} anchors."
                )
            per_image.append(labels)
        counts = np.array([len(labels) for labels in per_image], dtype=np.int64)
        boxes = np.concatenate(per_image) if per_image else np.zeros((0, 5))
        image_index = np.repeat(np.arange(len(per_image)), counts)

        def where(bad):
            k = int(np.flatnonzero(bad)[0])
            i = int(image_index[k])
            return i, k - int(counts[:i].sum()), boxes[k].tolist()

        finite = np.isfinite(boxes).all(axis=1)
        if not finite.all():
            i, j, box = where(~finite)
            raise ValueError(f"Batch item {i}, box {j} has a non-finite value: {box}")
        classes = boxes[:, 0]
        bad = (
            (classes != np.round(classes))
            | (classes < 0)
            | (classes >= self.n_classes)
            | (classes == self.background_id)
        )
        if bad.any():
            i, j, box = where(bad)
            raise ValueError(
                f"Batch item {i}, box {j} has class_id {box[0]:g}; expected an integer class id in "
                f"0 .. {self.n_classes - 1} other than the background id {self.background_id}."
            )
        degenerate = (boxes[:, 3] <= boxes[:, 1]) | (boxes[:, 4] <= boxes[:, 2])
        if degenerate.any():
            i, j, box = where(degenerate)
            raise DegenerateBoxError(
                f"SSDInputEncoder found a degenerate ground-truth box in batch item {i}: box {j} "
                f"(class_id, xmin, ymin, xmax, ymax) = {box} has xmax <= xmin and/or ymax <= ymin. "
                "Degenerate boxes would make the loss NaN; check the label format."
            )
        return boxes, image_index, counts

    def _iou_rows(self, boxes):
        """Dense IoU of `boxes` (k, 4; IoU corners) with every anchor: (k, n_boxes_total)."""
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return np.concatenate([layer.iou(boxes, area).reshape(len(boxes), -1) for layer in self._layers], axis=1)

    def __call__(self, ground_truth_labels, diagnostics=False):
        batch_size = len(ground_truth_labels)
        labels, image_index, counts = self._check_labels(ground_truth_labels)
        n_anchors = self.n_boxes_total
        d = border_offset(self.border_pixels)

        y_encoded = self._outputs.take((batch_size,) + self._template.shape, np.float32)
        y_encoded[...] = self._template
        self._outputs.give(y_encoded)
        if len(labels) == 0:
            return (y_encoded, y_encoded.copy()) if diagnostics else y_encoded

        classes = labels[:, 0].astype(np.int64)
        gt = labels[:, 1:5].copy()  # corners (xmin, ymin, xmax, ymax)
        if self.normalize_coords:
            gt /= np.array([self.img_width, self.img_height, self.img_width, self.img_height], dtype=np.float64)
        # The ground truth in the model's format, and as the IoU sees it (as in the original:
        # converted to `coords` with `border_pixels`, back to corners, then `d` on the max side).
        gt_coords = (
            gt if self.coords == "corners" else convert_coordinates(gt, 0, f"corners2{self.coords}", self.border_pixels)
        )
        gt_iou = to_corners(gt_coords, self.coords)
        gt_iou[:, 2:] += d
        gt_w = gt_iou[:, 2] - gt_iou[:, 0]
        gt_h = gt_iou[:, 3] - gt_iou[:, 1]
        gt_area = gt_w * gt_h

        # Sparse IoU: every (box, anchor) pair that reaches the lowest threshold in use.
        low = (
            self.neg_iou_limit if self.matching_type == "bipartite" else min(self.neg_iou_limit, self.pos_iou_threshold)
        )
        hit_box, hit_anchor, hit_iou = [], [], []
        reachable = _iou_upper_bound(self._type_ranges, gt_w, gt_h, gt_area) >= low
        for layer, start, stop in zip(self._layers, self._type_slices[:-1], self._type_slices[1:]):
            layer_reachable = reachable[:, start:stop]
            types = np.flatnonzero(layer_reachable.any(axis=0))
            if types.size == 0:
                continue
            selected = np.flatnonzero(layer_reachable.any(axis=1))
            ious = layer.iou(gt_iou[selected], gt_area[selected], types)
            box_local, row, col, type_local = np.nonzero(ious >= low)
            hit_box.append(selected[box_local])
            hit_anchor.append(layer.base + layer.cell_index[row, col, 0] + types[type_local])
            hit_iou.append(ious[box_local, row, col, type_local])
        hit_box = np.concatenate(hit_box) if hit_box else np.zeros(0, np.int64)
        hit_anchor = np.concatenate(hit_anchor) if hit_anchor else np.zeros(0, np.int64)
        hit_iou = np.concatenate(hit_iou) if hit_iou else np.zeros(0)

        # Each box's best anchor (lowest index among ties). Boxes without a hit need a full row.
        n_boxes = len(labels)
        best_value = np.full(n_boxes, -np.inf)
        np.maximum.at(best_value, hit_box, hit_iou)
        best_anchor = np.full(n_boxes, n_anchors, dtype=np.int64)
        at_best = hit_iou == best_value[hit_box]
        np.minimum.at(best_anchor, hit_box[at_best], hit_anchor[at_best])
        missing = np.flatnonzero(best_anchor == n_anchors)
        if missing.size:
            rows = self._iou_rows(gt_iou[missing])
            best_anchor[missing] = rows.argmax(axis=1)
            best_value[missing] = rows[np.arange(missing.size), best_anchor[missing]]

        # Bipartite matching per image, on (batch, max_boxes) padded arrays.
        box_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(n_boxes) - box_start[image_index]
        max_boxes = int(counts.max())
        padded_anchor = np.zeros((batch_size, max_boxes), dtype=np.int64)
        padded_value = np.full((batch_size, max_boxes), -np.inf)
        padded_anchor[image_index, slot] = best_anchor
        padded_value[image_index, slot] = best_value
        matches = greedy_bipartite_from_best(
            padded_anchor, padded_value, counts, lambda b, j: self._iou_rows(gt_iou[box_start[b] + j][None])[0]
        )
        matched_box = np.arange(n_boxes)
        matched_anchor = matches[image_index, slot]

        # Best box per (image, anchor) among the hits, for 'multi' matching and neutral anchors.
        # One stable sort by (image, anchor, -IoU); hits come in increasing box order, so the
        # first hit of each (image, anchor) group is its best box, the lowest index among ties.
        key = image_index[hit_box] * n_anchors + hit_anchor
        order = np.argsort(key + (1.0 - hit_iou) * 0.5, kind="stable")
        key, hit_box, hit_iou = key[order], hit_box[order], hit_iou[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key, hit_box, hit_iou = key[first], hit_box[first], hit_iou[first]
        free = ~np.isin(key, image_index * n_anchors + matched_anchor)
        if self.matching_type == "multi":
            multi = free & (hit_iou >= self.pos_iou_threshold)
            free &= ~multi
            matched_box = np.concatenate([matched_box, hit_box[multi]])
            matched_anchor = np.concatenate([matched_anchor, key[multi] % n_anchors])
        neutral = key[free & (hit_iou >= self.neg_iou_limit)]

        flat = y_encoded.reshape(batch_size * n_anchors, -1)
        rows = image_index[matched_box] * n_anchors + matched_anchor
        flat[rows, self.background_id] = 0.0
        flat[rows, classes[matched_box]] = 1.0
        flat[neutral, self.background_id] = 0.0
        if diagnostics:
            y_matched_anchors = y_encoded.copy()
        flat[rows, OFFSETS] = encode_boxes(
            gt_coords[matched_box], self._anchors[matched_anchor], self.variances, self.coords
        )
        if diagnostics:
            return y_encoded, y_matched_anchors
        return y_encoded
