"""The original's `models.keras_ssd300`: re-exports of `ssd_keras.models.ssd300`."""

from ssd_keras.models.ssd300 import SSD300, SSD300_EXTRA_LAYERS, SSD300_SOURCES, ssd_300
