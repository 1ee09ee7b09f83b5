"""The original's `keras_layers.keras_layer_DecodeDetections`: re-exports of `ssd_keras.layers.decode_detections`."""

from ssd_keras.layers.decode_detections import DecodeDetections
