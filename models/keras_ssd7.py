"""The original's `models.keras_ssd7`: re-exports of `ssd_keras.models.ssd7`."""

from ssd_keras.models.ssd7 import SSD7_LAYERS, SSD7_MIN_SIZE, SSD7_SOURCE_LAYERS, build_model
