"""`L2Normalization` (Liu et al. 2016, §3.1 and ParseNet): conv4_3's features have a
much larger scale than the later layers', so SSD normalizes each position's feature
vector to unit L2 norm and multiplies it by a learned per-channel scale initialised to 20."""

import keras
from keras import ops

from ssd_keras.utils.backend import scalar_like


@keras.saving.register_keras_serializable(package="ssd_keras")
class L2Normalization(keras.layers.Layer):
    """L2-normalizes the last (channel) axis and scales it by a learned `gamma`.

    ``y = x / sqrt(max(sum(x ** 2), 1e-12)) * gamma``, channels last.

    Args:
        gamma_init: initial value of every channel's scale (the paper uses 20).

    Call arguments:
        inputs: tensor (batch, height, width, channels).

    Returns:
        tensor of the same shape.
    """

    def __init__(self, gamma_init=20, **kwargs):
        super().__init__(**kwargs)
        self.gamma_init = gamma_init

    def build(self, input_shape):
        # One weight, gamma (channels,): the single weight of the published weight files.
        """Creates `gamma`, one scale per channel, initialised to `gamma_init`."""
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.gamma_init),
            trainable=True,
        )

    def call(self, inputs):
        """Each position's channel vector scaled to unit L2 norm, then by `gamma`."""
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        normalized = inputs * ops.rsqrt(ops.maximum(squared, scalar_like(1e-12, squared)))
        return normalized * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape

    def get_config(self):
        """Every constructor argument, as plain Python values."""
        config = super().get_config()
        config.update(gamma_init=self.gamma_init)
        return config
