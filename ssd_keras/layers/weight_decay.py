"""The L2 weight decay of the models' convolutions.

`L2WeightDecay` is Keras' `L2` regularizer (same penalty, ``l2 * sum(kernel ** 2)``, same
config) computed without turning the factor into a tensor first. Keras' own casts it
with ``ops.cast``, which under PyTorch copies the number to the GPU and waits for all
queued work, once per regularized kernel and training step (see
`ssd_keras.utils.backend`). It is registered, so model files that hold it load after
any import of this package.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ssd_keras")
class L2WeightDecay(keras.regularizers.L2):
    """``l2 * sum(x ** 2)``, as `keras.regularizers.L2`."""

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))
