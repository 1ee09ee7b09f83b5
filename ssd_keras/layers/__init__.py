"""The custom Keras layers of SSD, all in `keras.ops`.

Importing this package (or any module of it, or `ssd_keras.models.ssd300` and the other
builders) registers every custom object that an SSD model file can hold: the five layer
modules, the convolutions' weight decay, the loss (`ssd_keras.losses`), and the optimizers
of files saved under PyTorch (`saved_optimizers`). `keras.saving.load_model` then finds
them in a new Python process, with or without ``custom_objects``.
"""

from ssd_keras.layers import (  # noqa: F401
    anchor_boxes,
    decode_detections,
    decode_detections_fast,
    l2_normalization,
    preprocessing,
    saved_optimizers,
    weight_decay,
)
from ssd_keras.layers.anchor_boxes import AnchorBoxes
from ssd_keras.layers.decode_detections import DecodeDetections
from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast
from ssd_keras.layers.l2_normalization import L2Normalization
from ssd_keras.layers.preprocessing import (
    IdentityLayer,
    InputChannelSwap,
    InputMeanNormalization,
    InputStddevNormalization,
)
from ssd_keras.losses import ssd_loss  # noqa: F401  (the loss a compiled model is saved with)

__all__ = [
    "AnchorBoxes",
    "DecodeDetections",
    "DecodeDetectionsFast",
    "IdentityLayer",
    "InputChannelSwap",
    "InputMeanNormalization",
    "InputStddevNormalization",
    "L2Normalization",
]
