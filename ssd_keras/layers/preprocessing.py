"""The models' input preprocessing as small registered layers.

The original used `Lambda` layers holding closures, which Keras 3 refuses to load in
safe mode. These layers do the same arithmetic and the builders give them the
original layer names (`identity_layer`, `input_mean_normalization`,
`input_stddev_normalization`, `input_channel_swap`), so the graph, the names and the
weight files are unchanged. None of them has weights.
"""

import keras
import numpy as np
from keras import ops

from ssd_keras.utils.backend import device_constant


def _as_list(name, value):
    """A number or a sequence of numbers as a list of floats (for `get_config`)."""
    values = np.asarray(value, dtype=np.float64)
    if values.ndim > 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(
            f"Expected `{name}` to be a number or a list of numbers, one per channel. Received: {name}={value!r}"
        )
    return [float(v) for v in values.ravel()]


class _PerChannel(keras.layers.Layer):
    """Base for the per-channel constant layers: one value, or one per channel."""

    arg_name = None

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        setattr(self, self.arg_name, _as_list(self.arg_name, values))

    def _constant(self, inputs):
        values = getattr(self, self.arg_name)
        if len(values) not in (1, inputs.shape[-1]):
            raise ValueError(
                f"Layer '{self.name}' has {len(values)} values of `{self.arg_name}` for an input with "
                f"{inputs.shape[-1]} channels."
            )
        return device_constant(
            self, "values", lambda: np.array(values, dtype=np.float32), like=inputs, dtype=inputs.dtype
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config[self.arg_name] = list(getattr(self, self.arg_name))
        return config


@keras.saving.register_keras_serializable(package="ssd_keras")
class IdentityLayer(keras.layers.Layer):
    """Returns its input; the first layer after `Input`, named 'identity_layer'."""

    def call(self, inputs):
        """The input, unchanged."""
        return inputs

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape


@keras.saving.register_keras_serializable(package="ssd_keras")
class InputMeanNormalization(_PerChannel):
    """Subtracts `subtract_mean` (one value, or one per channel): ``x - mean``."""

    arg_name = "subtract_mean"

    def __init__(self, subtract_mean, **kwargs):
        super().__init__(subtract_mean, **kwargs)

    def call(self, inputs):
        """The input minus the per-channel mean."""
        return inputs - self._constant(inputs)


@keras.saving.register_keras_serializable(package="ssd_keras")
class InputStddevNormalization(_PerChannel):
    """Divides by `divide_by_stddev` (one value, or one per channel): ``x / stddev``."""

    arg_name = "divide_by_stddev"

    def __init__(self, divide_by_stddev, **kwargs):
        super().__init__(divide_by_stddev, **kwargs)
        if any(v == 0 for v in self.divide_by_stddev):
            raise ValueError(f"Expected non-zero `divide_by_stddev`. Received: divide_by_stddev={divide_by_stddev!r}")

    def call(self, inputs):
        """The input divided by the per-channel standard deviation."""
        return inputs / self._constant(inputs)


@keras.saving.register_keras_serializable(package="ssd_keras")
class InputChannelSwap(keras.layers.Layer):
    """Reorders the channels: output channel ``i`` is input channel ``swap_channels[i]``.

    Any number of channels works (the original handled only 3 or 4 and crashed on
    other lengths). The VGG models use ``[2, 1, 0]``: RGB in, BGR to the network.
    """

    def __init__(self, swap_channels, **kwargs):
        super().__init__(**kwargs)
        order = [int(c) for c in swap_channels]
        if not order or any(c < 0 for c in order):
            raise ValueError(
                f"Expected `swap_channels` to be a non-empty list of channel indices. Received: {swap_channels!r}"
            )
        self.swap_channels = order

    def call(self, inputs):
        """The input's channels in the order of `swap_channels`."""
        if max(self.swap_channels) >= inputs.shape[-1]:
            raise ValueError(
                f"`swap_channels`={self.swap_channels} names a channel the input does not have "
                f"({inputs.shape[-1]} channels)."
            )
        order = device_constant(
            self, ("swap_channels", tuple(self.swap_channels)), lambda: self.swap_channels, like=inputs, dtype="int32"
        )
        return ops.take(inputs, order, axis=-1)

    def compute_output_shape(self, input_shape):
        """The input's shape, with ``len(swap_channels)`` channels."""
        return tuple(input_shape[:-1]) + (len(self.swap_channels),)

    def get_config(self):
        """Every constructor argument, as plain Python values."""
        config = super().get_config()
        config.update(swap_channels=list(self.swap_channels))
        return config


def input_preprocessing(x, subtract_mean=None, divide_by_stddev=None, swap_channels=None):
    """Applies the original's preprocessing chain with its layer names.

    ``identity_layer`` always; then, when given, ``input_mean_normalization``,
    ``input_stddev_normalization`` and ``input_channel_swap``, in that order (so the
    mean is given in the input's channel order, RGB for the VGG models).
    """
    x = IdentityLayer(name="identity_layer")(x)
    if subtract_mean is not None:
        x = InputMeanNormalization(subtract_mean, name="input_mean_normalization")(x)
    if divide_by_stddev is not None:
        x = InputStddevNormalization(divide_by_stddev, name="input_stddev_normalization")(x)
    if swap_channels:
        x = InputChannelSwap(swap_channels, name="input_channel_swap")(x)
    return x
