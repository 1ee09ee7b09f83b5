"""The SSD loss (`SSDLoss`). Importing it registers the project's layers as well (see `ssd_keras.layers`)."""

import ssd_keras.layers  # noqa: F401,E402  (registration of the custom objects)
from ssd_keras.losses.ssd_loss import SSDLoss

__all__ = ["SSDLoss"]
