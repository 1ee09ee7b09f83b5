"""The original's `data_generator.object_detection_2d_geometric_ops`:
re-exports of `ssd_keras.data.transforms.geometric`."""

from ssd_keras.data.transforms.geometric import (
    INTERPOLATION_MODES,
    Flip,
    RandomFlip,
    RandomRotate,
    RandomScale,
    RandomTranslate,
    Resize,
    ResizeRandomInterp,
    Rotate,
    Scale,
    Translate,
)
