"""Names for the slices of the packed SSD tensor.

The model output and the encoder's targets share one layout along the last axis,
kept from the original so that existing weights, losses and notebooks still fit::

    [ class scores or one-hot (n_classes + 1, background first) | 4 offsets | 4 anchor coords | 4 variances ]

Everything indexes it from the end, so the slices below hold for any number of classes.
"""

CLASSES = slice(None, -12)
OFFSETS = slice(-12, -8)
ANCHORS = slice(-8, -4)
VARIANCES = slice(-4, None)
N_BOX_CHANNELS = 12  # offsets + anchors + variances
# The fewest channels a packed tensor can have: background, one class and the box channels.
MIN_CHANNELS = 2 + N_BOX_CHANNELS
# The name of the layer that decodes the packed tensor in a model of 'inference' mode.
DECODED_LAYER = "decoded_predictions"


def decoding_layer(model):
    """The model's decoding layer (named `DECODED_LAYER`), or None for a model whose output
    is the packed tensor itself."""
    return next((layer for layer in model.layers if layer.name == DECODED_LAYER), None)


def n_classes_of(model):
    """The number of positive classes of an SSD model in any mode (background not counted),
    from the width of its packed tensor."""
    layer = decoding_layer(model)
    packed = layer.input if layer is not None else model.outputs[0]
    return int(packed.shape[-1]) - N_BOX_CHANNELS - 1
