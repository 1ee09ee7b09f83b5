"""Model files with an optimizer saved under PyTorch load under every backend.

Under the PyTorch backend Keras replaces `keras.optimizers.SGD`, `Adam` and the others
by subclasses of its own (``keras.src.backend.torch.optimizers.torch_sgd.SGD`` ...), and
a model file saved there names that module in its config. Loaded under TensorFlow or
JAX, Keras imports it and trains with PyTorch's update step on the other backend's
variables ("TypeError: expected Tensor as element 0 in argument 0, but got
ResourceVariable"), so a checkpoint written on a PyTorch machine could not be resumed
anywhere else. Such configs also carry the class's registered name ("SGD"), which Keras
looks up among the registered custom objects first: registering the public optimizers
under their names makes it take `keras.optimizers.SGD`, which each backend turns into
its own. Configs of the public classes (TensorFlow, JAX) have no registered name and are
not affected.
"""

import keras

# The optimizers Keras' PyTorch backend subclasses.
_TORCH_SUBCLASSED = ("Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "Lion", "Nadam", "RMSprop", "SGD")


def register():
    """Registers each public optimizer of `_TORCH_SUBCLASSED` under its class name, unless
    something else is registered under that name already."""
    registry = keras.saving.get_custom_objects()
    for name in _TORCH_SUBCLASSED:
        optimizer = getattr(keras.optimizers, name, None)
        if optimizer is not None:
            registry.setdefault(name, optimizer)


register()
