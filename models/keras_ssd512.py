"""The original's `models.keras_ssd512`: re-exports of `ssd_keras.models.ssd512`."""

from ssd_keras.models.ssd512 import SSD512, SSD512_EXTRA_LAYERS, SSD512_SOURCES, ssd_512
