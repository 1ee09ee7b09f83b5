"""Loading a detector for prediction, and drawing its boxes.

A model saved in 'training' mode (raw ``(batch, n_boxes, n_classes + 13)`` output) gets
the `DecodeDetections` layer the builders add in 'inference' mode, with the anchor
settings read from its own `AnchorBoxes` layers, so any saved SSD can predict.
"""

import os

import cv2
import numpy as np

DECODED_LAYER = "decoded_predictions"


def add_decoding(model, confidence_thresh=0.5, iou_threshold=0.45, top_k=200, nms_max_output_size=400, fast=False):
    """Returns `model` with a decoding layer on its raw predictions (the 'inference' mode).

    A model that already decodes is returned as it is.

    Raises:
        ValueError: if the model has no `AnchorBoxes` layer (it is not an SSD).
    """
    import keras

    from keras_layers.keras_layer_AnchorBoxes import AnchorBoxes
    from keras_layers.keras_layer_DecodeDetections import DecodeDetections
    from keras_layers.keras_layer_DecodeDetectionsFast import DecodeDetectionsFast

    if any(layer.name == DECODED_LAYER for layer in model.layers):
        return model
    anchors = [layer for layer in model.layers if isinstance(layer, AnchorBoxes)]
    if not anchors:
        raise ValueError(f"Expected an SSD model with AnchorBoxes layers. Received: model {model.name!r} has none")
    height, width = model.inputs[0].shape[1:3]
    layer_class = DecodeDetectionsFast if fast else DecodeDetections
    decoded = layer_class(confidence_thresh=confidence_thresh, iou_threshold=iou_threshold, top_k=top_k,
                          nms_max_output_size=nms_max_output_size, coords=anchors[0].coords, normalize_coords=anchors[0].normalize_coords,
                          img_height=height, img_width=width, name=DECODED_LAYER)(model.outputs[0])
    return keras.Model(model.inputs, decoded, name=model.name)


def load_detector(path, **decode_args):
    """Loads a `.keras` model file and returns it decoding (see `add_decoding`).

    Raises:
        FileNotFoundError: if `path` does not exist.
    """
    import keras

    # Importing the modules registers the custom layers and the loss for deserialisation.
    import keras_layers.keras_layer_AnchorBoxes  # noqa: F401
    import keras_layers.keras_layer_DecodeDetections  # noqa: F401
    import keras_layers.keras_layer_DecodeDetectionsFast  # noqa: F401
    import keras_layers.keras_layer_InputPreprocessing  # noqa: F401
    import keras_layers.keras_layer_L2Normalization  # noqa: F401
    import keras_loss_function.keras_ssd_loss  # noqa: F401

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    model = keras.models.load_model(path, compile=False)
    return add_decoding(model, **decode_args)


def class_colours(n_classes):
    """One BGR colour per class id (background included), spread over the hue circle."""
    hues = np.linspace(0, 179, n_classes + 1, endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 230), np.full_like(hues, 255)], axis=-1)[None]
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def draw_boxes(image, detections=(), ground_truth=(), classes=None):
    """Draws detections and ground truth onto a copy of an RGB image; returns it as BGR.

    Args:
        image: (height, width, 3) uint8 RGB.
        detections: rows ``[class_id, confidence, xmin, ymin, xmax, ymax]``: coloured
            boxes labelled with class name and confidence.
        ground_truth: rows ``[class_id, xmin, ymin, xmax, ymax]``: thin white boxes.
        classes: class names by id ('background' first); ids are shown without it.

    Returns:
        the BGR image, ready for ``cv2.imwrite``.
    """
    canvas = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR)
    n_classes = len(classes) - 1 if classes else int(max([row[0] for row in detections] + [row[0] for row in ground_truth] + [1]))
    colours = class_colours(n_classes)

    def name(class_id):
        return classes[class_id] if classes and 0 <= class_id < len(classes) else str(class_id)

    for row in ground_truth:
        x1, y1, x2, y2 = (int(round(v)) for v in row[1:5])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (255, 255, 255), 1)
    for row in detections:
        class_id = int(row[0])
        x1, y1, x2, y2 = (int(round(v)) for v in row[2:6])
        colour = colours[class_id % len(colours)]
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        text = f"{name(class_id)} {row[1]:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(y1 - th - 4, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + 4), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def write_png(path, bgr_image):
    """Writes a PNG, creating the directory.

    Raises:
        OSError: if the file cannot be written.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, bgr_image):
        raise OSError(f"Cannot write image file: {path}")
