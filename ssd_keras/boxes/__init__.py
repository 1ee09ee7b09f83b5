"""Boxes: geometry, anchors, box coding, matching and the packed tensor layout (NumPy).

Modules: `geometry` (coordinate conversions, intersection areas, IoU), `anchors` (the one
function that generates a predictor layer's anchors, and `AnchorConfig`, the resolved
anchor settings the builders, the encoder and the layers share), `coding` (the offset
formulas of SSD), `matching` (bipartite and multi matching of ground truth to anchors),
`layout` (names for the slices of the packed prediction tensor). Nothing here imports Keras.
"""

from ssd_keras.boxes.anchors import AnchorConfig, generate_anchor_boxes
from ssd_keras.boxes.geometry import convert_coordinates, iou

__all__ = ["AnchorConfig", "convert_coordinates", "generate_anchor_boxes", "iou"]
