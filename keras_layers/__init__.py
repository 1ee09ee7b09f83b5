"""The custom Keras layers of SSD.

Importing this package, any module of it, or of `keras_loss_function` or `models`,
registers every custom object that an SSD model file can hold (the five layer modules,
the convolutions' weight decay and the loss, and the optimizers of files saved under
PyTorch, see `saved_optimizers`), so that `keras.saving.load_model` finds
them in a new Python process whichever of the original's imports, or ``custom_objects``,
the caller used.
"""

from keras_layers import (  # noqa: F401
    keras_layer_AnchorBoxes,
    keras_layer_DecodeDetections,
    keras_layer_DecodeDetectionsFast,
    keras_layer_InputPreprocessing,
    keras_layer_L2Normalization,
    saved_optimizers,
    weight_decay,
)
import keras_loss_function.keras_ssd_loss  # noqa: F401,E402  (the loss a compiled model is saved with)
