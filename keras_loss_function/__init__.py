"""The original's `keras_loss_function` package. Importing it registers the custom layers and the loss
(see `ssd_keras.layers`), as importing the original's did."""

import ssd_keras.layers  # noqa: F401
