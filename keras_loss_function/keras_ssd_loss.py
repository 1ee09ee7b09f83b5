"""The original's `keras_loss_function.keras_ssd_loss`: re-exports of `ssd_keras.losses.ssd_loss`."""

from ssd_keras.losses.ssd_loss import SSDLoss, SSDLossFunction
