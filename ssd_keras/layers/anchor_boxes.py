"""`AnchorBoxes`: appends a predictor layer's anchor boxes and variances to the model output.

The model predicts offsets relative to anchors; carrying the anchors in the output
tensor lets the loss and the decoders work from the output alone. The anchors come
from `ssd_keras.boxes.anchors.generate_anchor_boxes`, the function
`SSDInputEncoder` uses, so model and encoder always agree.
"""

import keras
import numpy as np
from keras import ops

from ssd_keras.boxes.anchors import generate_anchor_boxes, n_boxes_per_cell, resolve_per_layer, resolve_variances
from ssd_keras.boxes.geometry import COORDS, check_one_of
from ssd_keras.utils.backend import device_constant


def _plain(value):
    """Tuples and NumPy values as plain Python lists and numbers, for `get_config`."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@keras.saving.register_keras_serializable(package="ssd_keras")
class AnchorBoxes(keras.layers.Layer):
    """Outputs the anchor boxes of one predictor layer, tiled over the batch.

    Args:
        img_height, img_width: model input size in pixels.
        this_scale: anchor scale of this layer, in [0, 1] (fraction of the shorter side).
        next_scale: scale of the next layer (>= 0), for the second square box.
        aspect_ratios: aspect ratios of the anchors of each cell.
        two_boxes_for_ar1: add a second square box of scale ``sqrt(this * next)``.
        this_steps, this_offsets: None, a number or an (h, w) pair (see
            `generate_anchor_boxes`).
        clip_boxes: clip the anchors to the image.
        variances: four values > 0, appended to every anchor.
        coords: 'centroids', 'corners' or 'minmax'.
        normalize_coords: relative instead of absolute coordinates.

    Call arguments:
        inputs: the predictor layer's output, (batch, fm_h, fm_w, channels); only its
            static feature-map size and its batch size are used.

    Returns:
        float32 tensor (batch, fm_h, fm_w, n_boxes, 8): 4 anchor coordinates, 4 variances.

    Raises:
        ValueError: for a scale out of range, bad variances, steps, offsets or `coords`.
    """

    # The arguments are one layer's share of the builders' and `SSDInputEncoder`'s (the
    # original's signature, kept); `AnchorConfig.layer_args` fills them.
    def __init__(
        self,
        img_height,
        img_width,
        this_scale,
        next_scale,
        aspect_ratios=(0.5, 1.0, 2.0),
        two_boxes_for_ar1=True,
        this_steps=None,
        this_offsets=None,
        clip_boxes=False,
        variances=(0.1, 0.1, 0.2, 0.2),
        coords="centroids",
        normalize_coords=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if this_scale < 0 or next_scale < 0 or this_scale > 1:
            raise ValueError(
                "Expected 0 <= this_scale <= 1 and next_scale >= 0. "
                f"Received: this_scale={this_scale}, next_scale={next_scale}"
            )
        check_one_of("coords", coords, COORDS)
        self.img_height = img_height
        self.img_width = img_width
        self.this_scale = float(this_scale)
        self.next_scale = float(next_scale)
        self.aspect_ratios = [float(ar) for ar in aspect_ratios]
        self.two_boxes_for_ar1 = bool(two_boxes_for_ar1)
        self.this_steps = resolve_per_layer([this_steps], 1, "this_steps")[0]
        self.this_offsets = resolve_per_layer([this_offsets], 1, "this_offsets", allow_zero=True)[0]
        self.clip_boxes = bool(clip_boxes)
        self.variances = resolve_variances(variances)
        self.coords = coords
        self.normalize_coords = bool(normalize_coords)
        self.n_boxes = n_boxes_per_cell(self.aspect_ratios, self.two_boxes_for_ar1)

    def anchors(self, feature_map_size):
        """The layer's constant for a feature map: float32 (fm_h, fm_w, n_boxes, 8)."""
        boxes = generate_anchor_boxes(
            self.img_height,
            self.img_width,
            feature_map_size,
            self.aspect_ratios,
            self.this_scale,
            self.next_scale,
            self.two_boxes_for_ar1,
            self.this_steps,
            self.this_offsets,
            self.clip_boxes,
            self.coords,
            self.normalize_coords,
        )
        variances = np.broadcast_to(np.array(self.variances), boxes.shape)
        return np.concatenate([boxes, variances], axis=-1).astype(np.float32)

    def call(self, inputs):
        """The anchors of every position of `x`'s feature map, tiled over the batch."""
        fm_h, fm_w = inputs.shape[1], inputs.shape[2]
        if fm_h is None or fm_w is None:
            raise ValueError(f"AnchorBoxes needs a static feature-map size. Received: input shape {inputs.shape}")
        anchors = device_constant(self, (fm_h, fm_w), lambda: self.anchors((fm_h, fm_w)), like=inputs)
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(anchors[None], (batch, fm_h, fm_w, self.n_boxes, 8))

    def compute_output_shape(self, input_shape):
        """``(batch, height, width, n_boxes, 8)``."""
        return (input_shape[0], input_shape[1], input_shape[2], self.n_boxes, 8)

    def get_config(self):
        """Every constructor argument, as plain Python values."""
        config = super().get_config()
        config.update(
            img_height=_plain(self.img_height),
            img_width=_plain(self.img_width),
            this_scale=self.this_scale,
            next_scale=self.next_scale,
            aspect_ratios=_plain(self.aspect_ratios),
            two_boxes_for_ar1=self.two_boxes_for_ar1,
            this_steps=_plain(self.this_steps),  # the original dropped steps and offsets (#226)
            this_offsets=_plain(self.this_offsets),
            clip_boxes=self.clip_boxes,
            variances=_plain(self.variances),
            coords=self.coords,
            normalize_coords=self.normalize_coords,
        )
        return config
