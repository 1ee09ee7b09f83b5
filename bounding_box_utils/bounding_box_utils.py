"""The original's `bounding_box_utils.bounding_box_utils`: re-exports of `ssd_keras.boxes.geometry`."""

from ssd_keras.boxes.geometry import (
    BORDER_PIXELS,
    CONVERSIONS,
    COORDS,
    IOU_MODES,
    border_offset,
    check_one_of,
    convert_coordinates,
    convert_coordinates2,
    intersection_area,
    intersection_area_,
    intersection_corners,
    iou,
    iou_corners,
    to_corners,
)
