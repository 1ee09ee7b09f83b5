"""The original's `keras_layers.keras_layer_AnchorBoxes`: re-exports of `ssd_keras.layers.anchor_boxes`."""

from ssd_keras.layers.anchor_boxes import AnchorBoxes
