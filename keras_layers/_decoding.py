"""What `DecodeDetections` and `DecodeDetectionsFast` share: arguments, validation,
config, and decoding the packed output into absolute corner boxes in TF ops.

The decoding rule is the one stated in `ssd_encoder_decoder.ssd_output_decoder` (and
the box formulas those of `ssd_encoder_decoder.box_coding`); a parity test checks the
layers against the NumPy decoders on the same raw predictions.
"""

import keras
import tensorflow as tf

from bounding_box_utils.bounding_box_utils import COORDS, check_one_of
from ssd_encoder_decoder.layout import ANCHORS, CLASSES, OFFSETS, VARIANCES


def decode_corners(y_pred, coords, normalize_coords, img_height, img_width):
    """Absolute ``(xmin, ymin, xmax, ymax)`` boxes from the packed tensor, float32.

    Args:
        y_pred: float32 tensor (batch, n_boxes, n_classes + 1 + 12).
        coords, normalize_coords, img_height, img_width: as for the layers.

    Returns:
        tensor (batch, n_boxes, 4).
    """
    offsets = y_pred[..., OFFSETS] * y_pred[..., VARIANCES]
    anchors = y_pred[..., ANCHORS]
    if coords == "centroids":
        cx = offsets[..., 0] * anchors[..., 2] + anchors[..., 0]
        cy = offsets[..., 1] * anchors[..., 3] + anchors[..., 1]
        w = tf.exp(offsets[..., 2]) * anchors[..., 2]
        h = tf.exp(offsets[..., 3]) * anchors[..., 3]
        boxes = tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)
    elif coords == "corners":
        w = anchors[..., 2] - anchors[..., 0]
        h = anchors[..., 3] - anchors[..., 1]
        boxes = offsets * tf.stack([w, h, w, h], axis=-1) + anchors
    else:  # minmax: (xmin, xmax, ymin, ymax)
        w = anchors[..., 1] - anchors[..., 0]
        h = anchors[..., 3] - anchors[..., 2]
        minmax = offsets * tf.stack([w, w, h, h], axis=-1) + anchors
        boxes = tf.gather(minmax, [0, 2, 1, 3], axis=-1)
    if normalize_coords:
        boxes = boxes * tf.constant([img_width, img_height, img_width, img_height], tf.float32)
    return boxes


def class_scores(y_pred):
    """The class scores, background included: (batch, n_boxes, n_classes + 1)."""
    return y_pred[..., CLASSES]


def xy_to_yx(boxes):
    """``(xmin, ymin, xmax, ymax)`` <-> ``(ymin, xmin, ymax, xmax)``, TF's NMS order."""
    return tf.gather(boxes, [1, 0, 3, 2], axis=-1)


class DecodeLayerBase(keras.layers.Layer):
    """Arguments, checks and config of the two decoding layers (see their docstrings)."""

    def __init__(
        self,
        confidence_thresh=0.01,
        iou_threshold=0.45,
        top_k=200,
        nms_max_output_size=400,
        coords="centroids",
        normalize_coords=True,
        img_height=None,
        img_width=None,
        **kwargs,
    ):
        # Decoding and NMS always run in float32, also under a mixed-precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_one_of("coords", coords, COORDS)
        if normalize_coords and (img_height is None or img_width is None):
            raise ValueError(
                "Decoding relative coordinates (normalize_coords=True) needs the image size. "
                f"Received: img_height={img_height}, img_width={img_width}"
            )
        for name, value in (("top_k", top_k), ("nms_max_output_size", nms_max_output_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
        self.confidence_thresh = float(confidence_thresh)
        self.iou_threshold = float(iou_threshold) if iou_threshold else 0.0
        self.top_k = int(top_k)
        self.nms_max_output_size = int(nms_max_output_size)
        self.coords = coords
        self.normalize_coords = bool(normalize_coords)
        self.img_height = None if img_height is None else float(img_height)
        self.img_width = None if img_width is None else float(img_width)

    def _decode(self, inputs):
        """(scores with background, absolute corner boxes), both float32."""
        if inputs.shape[-1] is None or inputs.shape[-1] < 14:
            raise ValueError(
                "Expected input of shape (batch, n_boxes, n_classes + 1 + 12) with at least one class "
                f"besides background. Received: shape={inputs.shape}"
            )
        y_pred = tf.cast(inputs, tf.float32)
        boxes = decode_corners(y_pred, self.coords, self.normalize_coords, self.img_height, self.img_width)
        return class_scores(y_pred), boxes

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.top_k, 6)  # a Python int, not a tensor (original bug 16)

    def get_config(self):
        config = super().get_config()
        config.update(
            confidence_thresh=self.confidence_thresh,
            iou_threshold=self.iou_threshold,
            top_k=self.top_k,
            nms_max_output_size=self.nms_max_output_size,
            coords=self.coords,
            normalize_coords=self.normalize_coords,
            img_height=self.img_height,
            img_width=self.img_width,
        )
        return config
