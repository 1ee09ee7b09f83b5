"""The original's `data_generator.object_detection_2d_data_generator`: re-exports of `ssd_keras.data.generator`."""

from ssd_keras.data.generator import (
    DEGENERATE_BOX_HANDLING,
    RETURN_ORDER,
    VOC_CLASSES,
    DataGenerator,
    DatasetError,
    DegenerateBatchError,
    DegenerateBoxError,
    degenerate_boxes,
    load_image,
)
