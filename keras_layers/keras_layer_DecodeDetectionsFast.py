"""The original's `keras_layers.keras_layer_DecodeDetectionsFast`:
re-exports of `ssd_keras.layers.decode_detections_fast`."""

from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast
