"""The SSD300, SSD512 and SSD7 builders. Importing them registers every custom layer and
the loss, so that their saved models load in a new process (see `keras_layers`)."""

import keras_layers  # noqa: F401
