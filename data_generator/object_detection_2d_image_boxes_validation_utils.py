"""The original's `data_generator.object_detection_2d_image_boxes_validation_utils`:
re-exports of `ssd_keras.data.transforms.validation`."""

from ssd_keras.data.transforms.validation import (
    OVERLAP_CRITERIA,
    BoundGenerator,
    BoxFilter,
    ImageValidator,
    overlap_mask,
)
