"""Decoding raw SSD output into boxes: offsets to coordinates, thresholds, non-maximum suppression.

The rule the decoders share with the Keras `DecodeDetections` layers:

* ``decode_detections`` (Caffe's ``DetectionOutput``): decode every anchor's offsets;
  for each positive class keep the boxes whose score is strictly above
  `confidence_thresh`, run greedy NMS per class (a box is dropped when its IoU with a
  higher-scoring kept box of the same class is above `iou_threshold`), then keep the
  `top_k` highest-scoring boxes over all classes.
* ``decode_detections_fast``: each anchor takes its argmax class (background
  included); background anchors are dropped, the rest must score strictly above
  `confidence_thresh`, and one class-agnostic NMS runs over all of them.

Results are ``[class_id, confidence, xmin, ymin, xmax, ymax]`` rows sorted by
descending confidence (ties keep class order, then anchor order).

Greedy NMS keeps a box iff no higher-scoring kept box suppresses it, so processing
the candidates of all classes in one descending-score order, with suppression only
within a class, gives exactly per-class NMS followed by top-k, and can stop as soon
as `top_k` boxes are kept. NMS runs on blocks of candidates: one IoU matrix per
block and a fixed-point iteration replace the one-box-at-a-time Python loop.
"""

import numpy as np

from ssd_keras.boxes.anchors import n_boxes_per_cell
from ssd_keras.boxes.coding import decode_boxes
from ssd_keras.boxes.geometry import (
    COORDS,
    border_offset,
    check_one_of,
    convert_coordinates,
    iou_corners,
)
from ssd_keras.boxes.layout import ANCHORS, CLASSES, MIN_CHANNELS, OFFSETS, VARIANCES
from ssd_keras.encoding.decoding_config import DECODING

_NMS_BLOCK = 256


# ---------------------------------------------------------------------------- NMS core


def _nms_sorted(boxes, iou_threshold, d, labels=None, max_output=None):
    """Greedy NMS over boxes already sorted by descending score.

    Args:
        boxes: (n, 4) corners.
        iou_threshold: a box is suppressed by a kept box with IoU strictly above this.
        d: border offset (see `ssd_keras.boxes.geometry`).
        labels: optional (n,) class labels; boxes only suppress boxes of their label.
        max_output: stop after this many kept boxes (None: no limit).

    Returns:
        int array of the kept positions, increasing.
    """
    n = len(boxes)
    limit = n if max_output is None else min(n, int(max_output))
    kept = []
    n_kept = 0
    for start in range(0, n, _NMS_BLOCK):
        if n_kept >= limit:
            break
        stop = min(start + _NMS_BLOCK, n)
        block = boxes[start:stop]
        block_labels = None if labels is None else labels[start:stop]
        alive = np.ones(stop - start, dtype=bool)
        if kept:
            previous = np.concatenate(kept)
            suppress = iou_corners(boxes[previous], block, "outer_product", d) > iou_threshold
            if labels is not None:
                suppress &= labels[previous][:, None] == block_labels[None, :]
            alive &= ~suppress.any(axis=0)
        overlap = iou_corners(block, block, "outer_product", d) > iou_threshold
        if labels is not None:
            overlap &= block_labels[:, None] == block_labels[None, :]
        overlap = np.triu(overlap, k=1)  # only earlier (higher-scoring) boxes suppress later ones
        # Fixed point of keep[i] = alive[i] and no kept j < i overlaps i. Box i's value
        # settles once every box before it has, so this ends after at most n steps.
        keep = alive.copy()
        while True:
            new_keep = alive & ~(overlap & keep[:, None]).any(axis=0)
            if np.array_equal(new_keep, keep):
                break
            keep = new_keep
        positions = start + np.flatnonzero(keep)
        positions = positions[: limit - n_kept]
        kept.append(positions)
        n_kept += len(positions)
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _descending(scores):
    """Stable descending order: ties keep their input order, as repeated `argmax` would."""
    return np.argsort(-scores, kind="stable")


def _greedy_nms_rows(rows, score_col, iou_threshold, coords, border_pixels):
    """Shared body of the `_greedy_nms*` helpers: rows sorted by score, NMS on the last 4 columns."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return rows.reshape(0, rows.shape[-1] if rows.ndim == 2 else 0)
    check_one_of("coords", coords, COORDS)
    d = border_offset(border_pixels)
    rows = rows[_descending(rows[:, score_col])]
    corners = convert_coordinates(rows[:, -4:], 0, f"{coords}2corners") if coords != "corners" else rows[:, -4:]
    return rows[_nms_sorted(corners, iou_threshold, d)]


def greedy_nms(y_pred_decoded, iou_threshold=DECODING.iou_threshold, coords="corners", border_pixels="half"):
    """Greedy NMS over each image's decoded predictions, regardless of class.

    Args:
        y_pred_decoded: list (one per image) of arrays (k, 6) ``[class_id, confidence,
            4 coords]``.
        iou_threshold: boxes overlapping a higher-scoring kept box by more are dropped.
        coords: format of the 4 coordinates: 'corners', 'centroids' or 'minmax'.
        border_pixels: 'half', 'include' or 'exclude'.

    Returns:
        list of arrays (k', 6), sorted by descending confidence.
    """
    return [_greedy_nms_rows(rows, 1, iou_threshold, coords, border_pixels) for rows in y_pred_decoded]


def _greedy_nms(predictions, iou_threshold=DECODING.iou_threshold, coords="corners", border_pixels="half"):
    """Greedy NMS on rows ``[confidence, 4 coords]``; returns the kept rows by descending confidence."""
    return _greedy_nms_rows(predictions, 0, iou_threshold, coords, border_pixels)


def _greedy_nms2(predictions, iou_threshold=DECODING.iou_threshold, coords="corners", border_pixels="half"):
    """Greedy NMS on rows ``[class_id, confidence, 4 coords]``, ignoring the class."""
    return _greedy_nms_rows(predictions, 1, iou_threshold, coords, border_pixels)


def _greedy_nms_debug(predictions, iou_threshold=DECODING.iou_threshold, coords="corners", border_pixels="half"):
    """Greedy NMS on rows ``[box_id, confidence, 4 coords]`` (`decode_detections_debug`)."""
    return _greedy_nms_rows(predictions, 1, iou_threshold, coords, border_pixels)


# ---------------------------------------------------------------------------- decoding


def _check_top_k(top_k):
    if top_k == "all":
        return None
    if isinstance(top_k, (bool, np.bool_)) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"Expected `top_k` to be a positive integer or 'all'. Received: top_k={top_k!r}")
    return int(top_k)


def _shape_error(shape):
    return ValueError(
        "Expected `y_pred` of shape (batch, n_boxes, n_classes + 1 + 12) with at least one class "
        f"besides background. Received: shape={tuple(shape)}"
    )


def decode_box_predictions(
    y_pred,
    input_coords="centroids",
    normalize_coords=True,
    img_height=None,
    img_width=None,
    variance_encoded_in_target=False,
):
    """Decodes the offsets of raw model output into absolute corner coordinates.

    Args:
        y_pred: array (..., n_classes + 1 + 12) in the model's layout, usually
            (batch, n_boxes, ...) or the rows of some anchors (k, ...).
        input_coords: the model's box format: 'centroids', 'minmax' or 'corners'.
        normalize_coords: the model predicts relative coordinates; multiply x by
            `img_width` and y by `img_height`.
        img_height, img_width: needed when `normalize_coords` is set.
        variance_encoded_in_target: the model's targets were not divided by the
            variances (see `box_coding.decode_boxes`).

    Returns:
        float64 array (..., 4) of ``(xmin, ymin, xmax, ymax)``.

    Raises:
        ValueError: for bad `y_pred` shapes, an unknown `input_coords`, or missing
            image sizes.
    """
    check_one_of("input_coords", input_coords, COORDS)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim < 2 or y_pred.shape[-1] < MIN_CHANNELS:
        raise _shape_error(y_pred.shape)
    if normalize_coords and (img_height is None or img_width is None):
        raise ValueError(
            "Decoding relative coordinates (normalize_coords=True) needs the image size. "
            f"Received: img_height={img_height}, img_width={img_width}"
        )
    boxes = decode_boxes(
        y_pred[..., OFFSETS], y_pred[..., ANCHORS], y_pred[..., VARIANCES], input_coords, variance_encoded_in_target
    )
    if input_coords != "corners":
        boxes = convert_coordinates(boxes, 0, f"{input_coords}2corners")
    if normalize_coords:
        boxes *= np.array([img_width, img_height, img_width, img_height], dtype=np.float64)
    return boxes


def _top_k_candidates(scores, limit):
    """Indices of the `limit` largest scores (any order), without sorting all of them."""
    if limit >= len(scores):
        return np.arange(len(scores))
    return np.argpartition(-scores, limit - 1)[:limit]


def _select(decode, scores, labels, iou_threshold, top_k, d, per_class):
    """NMS and top-k for one image's candidates.

    `decode(indices)` returns the corner boxes of those candidates: only the boxes
    that take part in the NMS are decoded. Returns the indices of the kept candidates,
    by descending score (ties: input order).
    Tries the best ``4 * top_k`` (at least 1024) candidates first, which is almost
    always enough to keep `top_k` boxes; if not, it runs again on all of them, so the
    result is always exact.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tries = [n] if top_k is None else sorted({min(n, max(4 * top_k, 1024)), n})
    for limit in tries:
        subset = _top_k_candidates(scores, limit)
        subset = subset[np.lexsort((subset, -scores[subset]))]
        kept = _nms_sorted(decode(subset), iou_threshold, d, labels[subset] if per_class else None, top_k)
        if top_k is None or len(kept) >= top_k or limit == n:
            break
    return subset[kept]


def _decoder(image_pred, anchors, **decode_args):
    """`decode(indices)` for `_select`: corner boxes of the candidates' anchors."""
    return lambda indices: decode_box_predictions(image_pred[anchors[indices]], **decode_args)


def _check_decode_args(y_pred, input_coords, normalize_coords, img_height, img_width, **extra):
    """Validates the decoding arguments once, up front; returns them as keyword arguments."""
    shape = np.shape(y_pred)
    if len(shape) != 3 or shape[-1] < MIN_CHANNELS:
        raise _shape_error(shape)
    decode_args = dict(
        input_coords=input_coords,
        normalize_coords=normalize_coords,
        img_height=img_height,
        img_width=img_width,
        **extra,
    )
    decode_box_predictions(np.asarray(y_pred)[..., :1, :], **decode_args)
    return decode_args


def positive_classes(n_class_columns, background_id=0):
    """The class ids (columns) other than the background, in order."""
    if not 0 <= background_id < n_class_columns:
        raise ValueError(f"`background_id`={background_id} is not one of the {n_class_columns} class columns.")
    return np.array([c for c in range(n_class_columns) if c != background_id])


def _per_class_candidates(image_scores, confidence_thresh, class_ids):
    """(anchor, class_id) of every score strictly above the threshold, anchor-major.

    `image_scores` is (n_boxes, n_positive_classes), the columns of `class_ids`.
    """
    flat = np.flatnonzero(image_scores > confidence_thresh)
    anchors, columns = np.divmod(flat, image_scores.shape[1])
    return anchors, class_ids[columns], image_scores.ravel()[flat].astype(np.float64)


def _decode_per_class(y_pred, confidence_thresh, iou_threshold, top_k, d, decode_args, background_id=0):
    """The rule of `decode_detections`, per image: yields (anchors, class_ids, confidences,
    corner boxes) of the kept detections, by descending confidence."""
    y_pred = np.asarray(y_pred)
    class_ids = positive_classes(y_pred[..., CLASSES].shape[-1], background_id)
    for image_pred in y_pred:
        # Candidates are (anchor, class) pairs, background excluded, numbered anchor-major.
        anchors, classes, conf = _per_class_candidates(
            image_pred[:, CLASSES][:, class_ids], confidence_thresh, class_ids
        )
        keep = _select(
            _decoder(image_pred, anchors, **decode_args), conf, classes, iou_threshold, top_k, d, per_class=True
        )
        yield anchors[keep], classes[keep], conf[keep], decode_box_predictions(image_pred[anchors[keep]], **decode_args)


def decode_detections(
    y_pred,
    confidence_thresh=DECODING.confidence_thresh,
    iou_threshold=DECODING.iou_threshold,
    top_k=DECODING.top_k,
    input_coords="centroids",
    normalize_coords=True,
    img_height=None,
    img_width=None,
    border_pixels="half",
    background_id=0,
):
    """Converts raw SSD output into detections, like Caffe's ``DetectionOutput`` layer.

    Per class (background excluded): boxes scoring strictly above `confidence_thresh`,
    greedy NMS with `iou_threshold`; then the `top_k` best boxes over all classes.

    Args:
        y_pred: array (batch, n_boxes, n_classes + 1 + 12), the output of a model in
            'training' mode (class scores after softmax).
        confidence_thresh: minimum class score, exclusive.
        iou_threshold: NMS threshold (boxes with IoU above it are suppressed).
        top_k: number of detections kept per image, or 'all'.
        input_coords: the model's box format: 'centroids', 'minmax' or 'corners'.
        normalize_coords: the model predicts relative coordinates (then `img_height`
            and `img_width` are required).
        img_height, img_width: model input size, to de-normalize.
        border_pixels: 'half', 'include' or 'exclude', for the NMS IoU.
        background_id: the class column of the background (as the encoder's).

    Returns:
        list (one per image) of float64 arrays (k, 6) ``[class_id, confidence, xmin,
        ymin, xmax, ymax]`` sorted by descending confidence; (0, 6) if nothing is found.

    Raises:
        ValueError: as `decode_box_predictions`, or for a bad `top_k` or `border_pixels`.

    Examples:
        >>> from ssd_keras.encoding import SSDInputEncoder
        >>> from ssd_keras.models.presets import encoder_kwargs
        >>> encoder = SSDInputEncoder(**encoder_kwargs("ssd300_voc"))
        >>> y_pred = encoder([np.array([[7, 30, 40, 130, 160]])])  # the output of a perfect model
        >>> decode_detections(y_pred, confidence_thresh=0.5, img_height=300, img_width=300)[0].round(1)
        array([[  7.,   1.,  30.,  40., 130., 160.]])
    """
    decode_args = _check_decode_args(y_pred, input_coords, normalize_coords, img_height, img_width)
    per_image = _decode_per_class(
        y_pred,
        confidence_thresh,
        iou_threshold,
        _check_top_k(top_k),
        border_offset(border_pixels),
        decode_args,
        background_id,
    )
    return [np.column_stack([classes, conf, boxes]).reshape(-1, 6) for _, classes, conf, boxes in per_image]


def decode_detections_fast(
    y_pred,
    confidence_thresh=0.5,
    iou_threshold=DECODING.iou_threshold,
    top_k="all",
    input_coords="centroids",
    normalize_coords=True,
    img_height=None,
    img_width=None,
    border_pixels="half",
    background_id=0,
):
    """Faster, approximate decoding: one class per anchor and one class-agnostic NMS.

    Each anchor takes its argmax class (background included); anchors whose argmax is
    background are dropped even if a positive class clears the threshold. The rest
    must score strictly above `confidence_thresh`. If `iou_threshold` is truthy, one
    greedy NMS runs over all remaining boxes regardless of class.

    Args and Returns: as `decode_detections` (note the defaults ``confidence_thresh=0.5``
    and ``top_k='all'``). Output coordinates are corners.
    """
    top_k = _check_top_k(top_k)
    d = border_offset(border_pixels)
    decode_args = _check_decode_args(y_pred, input_coords, normalize_coords, img_height, img_width)
    y_pred = np.asarray(y_pred)
    all_scores = y_pred[..., CLASSES]
    positive_classes(all_scores.shape[-1], background_id)  # checks it
    # argmax != background and max > threshold. With the background first, without an
    # argmax over every anchor: the argmax is the background exactly when its score is
    # the maximum (a tie goes to the first column).
    max_scores = all_scores.max(axis=-1)
    if background_id == 0:
        not_background = all_scores[..., 0] < max_scores
    else:
        not_background = all_scores.argmax(axis=-1) != background_id
    candidate = (max_scores > confidence_thresh) & not_background
    results = []
    for image_pred, image_candidate in zip(y_pred, candidate):
        anchors = np.flatnonzero(image_candidate)
        class_ids = image_pred[anchors][:, CLASSES].argmax(axis=-1)
        conf = image_pred[anchors, class_ids].astype(np.float64)
        if iou_threshold:
            keep = _select(
                _decoder(image_pred, anchors, **decode_args), conf, None, iou_threshold, top_k, d, per_class=False
            )
        else:
            keep = _descending(conf)[:top_k]
        boxes = decode_box_predictions(image_pred[anchors[keep]], **decode_args)
        results.append(np.column_stack([class_ids[keep], conf[keep], boxes]).reshape(-1, 6))
    return results


# `decode_detections_debug` and `decode_detections_fast` keep the original's signatures, twins
# of `decode_detections`'; all three share `_check_decode_args` and the NMS core.
def decode_detections_debug(
    y_pred,
    confidence_thresh=DECODING.confidence_thresh,
    iou_threshold=DECODING.iou_threshold,
    top_k=DECODING.top_k,
    input_coords="centroids",
    normalize_coords=True,
    img_height=None,
    img_width=None,
    variance_encoded_in_target=False,
    border_pixels="half",
    background_id=0,
):
    """`decode_detections` that also reports which anchor each detection came from.

    Returns:
        list (one per image) of arrays (k, 7) ``[box_id, class_id, confidence, xmin,
        ymin, xmax, ymax]`` sorted by descending confidence, where `box_id` is the
        anchor index; (0, 7) for an image without detections (the original crashed).
    """
    decode_args = _check_decode_args(
        y_pred,
        input_coords,
        normalize_coords,
        img_height,
        img_width,
        variance_encoded_in_target=variance_encoded_in_target,
    )
    per_image = _decode_per_class(
        y_pred,
        confidence_thresh,
        iou_threshold,
        _check_top_k(top_k),
        border_offset(border_pixels),
        decode_args,
        background_id,
    )
    return [
        np.column_stack([anchors, classes, conf, boxes]).reshape(-1, 7) for anchors, classes, conf, boxes in per_image
    ]


def get_num_boxes_per_pred_layer(predictor_sizes, aspect_ratios, two_boxes_for_ar1):
    """Number of anchors of each predictor layer.

    Args:
        predictor_sizes: ``(fm_h, fm_w)`` per layer.
        aspect_ratios: one list of aspect ratios per layer.
        two_boxes_for_ar1: as for the model. (The original added the extra box even
            for lists without 1; here it counts only when 1 is present.)

    Returns:
        list of ints.
    """
    return [
        int(size[0]) * int(size[1]) * n_boxes_per_cell(ars, two_boxes_for_ar1)
        for size, ars in zip(predictor_sizes, aspect_ratios)
    ]


def get_pred_layers(y_pred_decoded, num_boxes_per_pred_layer):
    """For each detection of `decode_detections_debug`, the predictor layer of its anchor.

    Returns:
        list (one per image) of lists of layer indices.

    Raises:
        ValueError: if a box id is outside the range of anchor indices.
    """
    cumulative = np.cumsum(num_boxes_per_pred_layer)
    layers = []
    for rows in y_pred_decoded:
        box_ids = np.asarray(rows, dtype=np.float64).reshape(-1, 7)[:, 0] if len(rows) else np.zeros(0)
        if np.any((box_ids < 0) | (box_ids >= cumulative[-1])):
            raise ValueError(
                f"Box index out of range: every box id must lie in [0, {cumulative[-1]}), the anchors given "
                "by `num_boxes_per_pred_layer`."
            )
        layers.append(np.searchsorted(cumulative, box_ids, side="right").tolist())
    return layers
