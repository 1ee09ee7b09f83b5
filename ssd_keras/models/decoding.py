"""Decoding inside a model: `add_decoding` gives any SSD (a model in 'training' mode, or one
that decodes already) the decoding layer with the settings given, and `n_classes_of` tells
how many classes an SSD has. The anchor settings come from the model's own `AnchorBoxes`
layers, so any saved SSD can decode."""

from ssd_keras.boxes.layout import DECODED_LAYER, decoding_layer, n_classes_of  # noqa: F401  (this module's API too)
from ssd_keras.encoding.decoding_config import DISPLAY_DECODING


def add_decoding(
    model,
    confidence_thresh=DISPLAY_DECODING.confidence_thresh,
    iou_threshold=DISPLAY_DECODING.iou_threshold,
    top_k=DISPLAY_DECODING.top_k,
    nms_max_output_size=DISPLAY_DECODING.nms_max_output_size,
    fast=None,
):
    """Returns `model` decoding its raw predictions with these settings (the 'inference' mode).

    A model in 'training' mode gets a decoding layer with the anchor settings of its own
    `AnchorBoxes` layers. A model that already decodes gets its decoding layer replaced,
    so that the settings given here apply to every model (the ones saved in it do not).

    Args:
        model: an SSD in any mode.
        confidence_thresh, iou_threshold, top_k, nms_max_output_size: the decoding layer's.
        fast: `DecodeDetectionsFast` (True) or `DecodeDetections` (False); None keeps
            the model's own kind, and takes `DecodeDetections` for a training-mode model.

    Raises:
        ValueError: if the model has no `AnchorBoxes` layer (it is not an SSD).
    """
    import keras

    from ssd_keras.layers.anchor_boxes import AnchorBoxes
    from ssd_keras.layers.decode_detections import DecodeDetections
    from ssd_keras.layers.decode_detections_fast import DecodeDetectionsFast

    anchors = [layer for layer in model.layers if isinstance(layer, AnchorBoxes)]
    if not anchors:
        raise ValueError(f"Expected an SSD model with AnchorBoxes layers. Received: model {model.name!r} has none")
    decoder = decoding_layer(model)
    raw = decoder.input if decoder is not None else model.outputs[0]
    if fast is None:
        fast = isinstance(decoder, DecodeDetectionsFast)
    height, width = model.inputs[0].shape[1:3]
    layer_class = DecodeDetectionsFast if fast else DecodeDetections
    decoded = layer_class(
        confidence_thresh=confidence_thresh,
        iou_threshold=iou_threshold,
        top_k=top_k,
        nms_max_output_size=nms_max_output_size,
        coords=anchors[0].coords,
        normalize_coords=anchors[0].normalize_coords,
        img_height=height,
        img_width=width,
        name=DECODED_LAYER,
    )(raw)
    # The input as the model has it (one tensor, not a list of one), so that predict
    # takes an array without Keras warning about the input structure.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, decoded, name=model.name)
