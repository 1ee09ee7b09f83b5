"""The original's `keras_layers.keras_layer_L2Normalization`: re-exports of `ssd_keras.layers.l2_normalization`."""

from ssd_keras.layers.l2_normalization import L2Normalization
