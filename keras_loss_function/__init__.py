"""The SSD loss. Importing it registers the project's layers as well (see `keras_layers`)."""

import keras_layers  # noqa: F401
