"""The SSD offset encoding and its inverse, for each coordinate format.

The network does not predict box coordinates but offsets relative to an anchor,
scaled by the anchor's size and divided by the "variances" (Liu et al. 2016, eq. 2;
the variances are Caffe's name for a fixed per-coordinate scaling that brings the
targets to roughly unit variance). Convolutions are translation invariant, so an
offset relative to the cell's own anchor is something they can learn.

* centroids: ``((cx - cx_a) / w_a, (cy - cy_a) / h_a, ln(w / w_a), ln(h / h_a)) / variances``
* corners:   ``(xmin - xmin_a, ymin - ymin_a, xmax - xmax_a, ymax - ymax_a) / (w_a, h_a, w_a, h_a) / variances``
* minmax:    ``(xmin - xmin_a, xmax - xmax_a, ymin - ymin_a, ymax - ymax_a) / (w_a, w_a, h_a, h_a) / variances``

Here ``w_a = xmax_a - xmin_a`` for the corner formats (no border offset).
`SSDInputEncoder` encodes with `encode_boxes`; the NumPy decoders decode with
`decode_boxes`, and the Keras decoding layers implement the same formulas in TF ops.
"""

import numpy as np

from ssd_keras.boxes.geometry import COORDS, check_one_of


def _corner_scale(anchors, coords):
    """Anchor widths/heights laid out like the four coordinates of `coords`."""
    if coords == "corners":
        w = anchors[..., 2] - anchors[..., 0]
        h = anchors[..., 3] - anchors[..., 1]
        return np.stack([w, h, w, h], axis=-1)
    w = anchors[..., 1] - anchors[..., 0]
    h = anchors[..., 3] - anchors[..., 2]
    return np.stack([w, w, h, h], axis=-1)


def encode_boxes(boxes, anchors, variances, coords="centroids"):
    """Encodes `boxes` as offsets relative to `anchors` (all arrays broadcast, last axis 4).

    Raises:
        ValueError: for an unknown `coords`.
    """
    check_one_of("coords", coords, COORDS)
    boxes = np.asarray(boxes, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    variances = np.asarray(variances, dtype=np.float64)
    if coords == "centroids":
        out = np.empty(np.broadcast_shapes(boxes.shape, anchors.shape), dtype=np.float64)
        out[..., :2] = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:]
        out[..., 2:] = np.log(boxes[..., 2:] / anchors[..., 2:])
        return out / variances
    return (boxes - anchors) / _corner_scale(anchors, coords) / variances


def decode_boxes(offsets, anchors, variances, coords="centroids", variance_encoded_in_target=False):
    """Inverse of `encode_boxes`: returns boxes in `coords` format.

    Args:
        offsets, anchors, variances: arrays that broadcast, last axis 4.
        coords: the format of `anchors` and of the result.
        variance_encoded_in_target: if True the offsets were not divided by the
            variances when they were encoded, so they are not multiplied back here.

    Raises:
        ValueError: for an unknown `coords`.
    """
    check_one_of("coords", coords, COORDS)
    offsets = np.asarray(offsets, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    scaled = offsets if variance_encoded_in_target else offsets * np.asarray(variances, dtype=np.float64)
    if coords == "centroids":
        out = np.empty(np.broadcast_shapes(scaled.shape, anchors.shape), dtype=np.float64)
        out[..., :2] = scaled[..., :2] * anchors[..., 2:] + anchors[..., :2]
        out[..., 2:] = np.exp(scaled[..., 2:]) * anchors[..., 2:]
        return out
    return scaled * _corner_scale(anchors, coords) + anchors
