"""Loading a detector for prediction, and drawing its boxes.

A model saved in 'training' mode (raw ``(batch, n_boxes, n_classes + 13)`` output) gets
the `DecodeDetections` layer the builders add in 'inference' mode, with the anchor
settings read from its own `AnchorBoxes` layers, so any saved SSD can predict.
"""

import json
import os
import re
import warnings

import cv2
import numpy as np

from ssd_keras.errors import NotAModelError
from ssd_keras.models.decoding import DECODED_LAYER, add_decoding, n_classes_of  # noqa: F401  (this module's API too)


def is_classifier_layer(name):
    """The class-prediction layers: SSD300/512's ``*_mbox_conf``, SSD7's ``classes4`` ... ``classes7``."""
    return name.endswith("_mbox_conf") or (name.startswith("classes") and name[7:].isdigit())


def _classes_of_file(model, path, layers):
    """Classes (background included) that the file's classifier `layers` predict, given the model's
    boxes per position; None unless every one of them tells the same whole number."""
    from ssd_keras.models.legacy_weights import read_legacy_h5

    file_layers = read_legacy_h5(path)
    counts = set()
    for name in layers:
        model_filters = int(model.get_layer(name).kernel.shape[-1])
        file_filters = int(file_layers[name][0][1].shape[-1])
        boxes = model_filters // (n_classes_of(model) + 1)
        counts.add(file_filters / boxes)
    count = counts.pop() if len(counts) == 1 else None
    return int(count) if count is not None and count.is_integer() and count > 1 else None


def load_weights_file(model, path, flag="--weights", for_training=False):
    """Loads the weights file `path` into `model`, for the command line: a Keras-2 ``.h5``
    (the published files, the original's checkpoints) by layer name, a Keras 3
    ``.weights.h5`` (``model.save_weights``) as Keras does, by the model's structure.

    Weights that do not fit are an error that says why when it can: a file whose
    classifiers predict another number of classes than the model names the file's count and
    the flag that fixes it. For prediction, model layers the file has no weights for
    (they would predict from random values) are a warning naming them.

    Returns:
        the `WeightLoadReport` of a Keras-2 file; None for a Keras 3 one.

    Raises:
        ValueError: naming `flag` and the file (the callers check that it exists).
    """
    from ssd_keras.models.legacy_weights import load_weights_by_name

    if path.endswith(".weights.h5"):
        try:
            with warnings.catch_warnings(record=True) as caught:  # Keras' own, about what the error will say
                warnings.simplefilter("always")
                model.load_weights(path)
        except ValueError as error:
            # Keras' message goes on with the arrays' values: its first line and the shapes suffice.
            text = str(error)
            shapes = re.search(r"variable\.shape=\(.*?\), Received: value\.shape=\(.*?\)", text)
            raise ValueError(
                f"{flag} {path} (Keras 3 weights, which load only into the same architecture) does not fit the "
                f"model built from --model, --image-size, --scales and --classes: {text.splitlines()[0]}"
                + (f" ({shapes.group(0)})" if shapes else "")
            ) from None
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return None
    report = load_weights_by_name(model, path, skip_mismatch=True)
    if report.mismatches:
        layers = [name for name, _ in report.mismatches]
        file_classes = _classes_of_file(model, path, layers) if all(map(is_classifier_layer, layers)) else None
        if file_classes is not None:
            fix = (
                f"give --classes with its {file_classes - 1} class names, or for other classes make a file with "
                f"`ssd-keras sample-weights`"
                if for_training
                else f"give --classes with its {file_classes - 1} class names"
            )
            raise ValueError(
                f"{flag} {path} is for {file_classes - 1} classes (plus background), the model for "
                f"{n_classes_of(model)}: {fix}"
            )
        details = "; ".join(f"{name}: {message}" for name, message in report.mismatches[:3])
        more = f" and {len(report.mismatches) - 3} more" if len(report.mismatches) > 3 else ""
        raise ValueError(
            f"{flag} {path} does not fit the model built from --model, --image-size and --scales "
            f"({len(report.mismatches)} layer(s) differ: {details}{more})"
        )
    if report.model_only and not for_training:
        names = ", ".join(report.model_only[:4]) + (
            f" and {len(report.model_only) - 4} more" if len(report.model_only) > 4 else ""
        )
        warnings.warn(
            f"{flag} {path} has no weights for {len(report.model_only)} layers of the model, which keep random "
            f"values: {names}",
            stacklevel=2,
        )
    return report


# A layer name only one of the architectures has, in the order they are tried.
_ARCHITECTURE_MARKS = (("conv10_2", "ssd512"), ("conv9_2", "ssd300"), ("conv4_3_norm", "ssd300"), ("classes4", "ssd7"))


def keras2_file_advice(path, loading_failed=False):
    """What to do with a Keras-2 `.h5` file given where a model file is expected, or None.

    A weights file (the published ssd_keras files, ``save_weights``) holds no model; a
    whole model saved by Keras 1 or 2 (the original's ``ModelCheckpoint`` files) cannot be
    rebuilt by Keras 3 when, as every ssd_keras model, it has `Lambda` layers: they hold
    bytecode of the Python that saved it. Both load by layer name into the same
    architecture, built anew: the advice names the command-line flags for that, with the
    architecture and input size read from the file where it has them.

    Args:
        path: the file.
        loading_failed: True once Keras failed to load it (only then is a whole Keras-2
            model reported; Keras 3 reads some of them).
    """
    import h5py

    from ssd_keras.models.legacy_weights import h5_text, weights_group

    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            layer_names = {h5_text(name) for name in weights_group(f).attrs.get("layer_names", [])}
    except (OSError, KeyError):
        return None
    config = h5_text(attrs["model_config"]) if "model_config" in attrs else None
    version = h5_text(attrs.get("keras_version", ""))
    architecture = next((name for mark, name in _ARCHITECTURE_MARKS if mark in layer_names), "ssd300|ssd512|ssd7")
    if config is None:
        if not layer_names:
            return None
        return (
            f"{path} holds weights only (the Keras-2 layout of the published ssd_keras files), not a model. "
            f"Build the model and load them by layer name: --model {architecture} --weights {path}, with the "
            "--classes, "
            "--image-size and --scales they were trained with"
        )
    if not (loading_failed and version.split(".")[0] in ("1", "2")):
        return None
    size = ""
    try:
        inputs = [
            layer["config"] for layer in json.loads(config)["config"]["layers"] if layer["class_name"] == "InputLayer"
        ]
        height, width = inputs[0]["batch_input_shape"][1:3]
        size = f" --image-size {int(height)}x{int(width)}"
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return (
        f"{path} is a whole model saved by Keras {version} (ssd_keras), which Keras 3 cannot rebuild: its Lambda "
        "layers "
        f"hold bytecode of the Python that saved it. Its weights load by layer name into the same architecture: "
        f"--model {architecture}{size} --weights {path}, with the --classes and --scales it was trained with"
    )


def load_detector(path, **decode_args):
    """Loads a `.keras` (or Keras `.h5` model) file and returns it decoding (see `add_decoding`).

    Raises:
        FileNotFoundError: if `path` does not exist.
        NotAModelError: naming the file, if it is not a Keras model file; for a Keras-2
            weights file or a whole Keras-2 model that Keras 3 cannot rebuild, with the
            flags that load its weights (`keras2_file_advice`).
    """
    from ssd_keras.errors import CorruptModelFile
    from ssd_keras.models.files import verify

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    if not path.endswith((".keras", ".h5")):
        raise NotAModelError(f"Not a .keras or .h5 model file: {path}")
    if path.endswith(".keras"):
        try:
            verify(path)
        except CorruptModelFile as error:
            raise NotAModelError(f"Not a Keras model file: {error}") from None
    advice = keras2_file_advice(path) if path.endswith(".h5") else None
    if advice:
        raise NotAModelError(advice)
    import keras  # after the checks: a file at fault is named before Keras and its backend start

    import ssd_keras.layers  # noqa: F401  (registers the custom layers and the loss)

    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        advice = keras2_file_advice(path, loading_failed=True) if path.endswith(".h5") else None
        raise NotAModelError(advice or f"Not a Keras model file: {path} ({type(error).__name__}: {error})") from error
    return add_decoding(model, **decode_args)


def decoding_model(source, **decode_args):
    """A decoding Keras model from a model file (`load_detector`) or a Keras model
    (`add_decoding`), with the decoding settings given."""
    if isinstance(source, (str, os.PathLike)):
        return load_detector(os.fspath(source), **decode_args)
    return add_decoding(source, **decode_args)


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
    n_classes = (
        len(classes) - 1
        if classes
        else int(max([row[0] for row in detections] + [row[0] for row in ground_truth] + [1]))
    )
    colours = class_colours(n_classes)

    def name(class_id):
        return classes[class_id] if classes and 0 <= class_id < len(classes) else str(class_id)

    height, width = canvas.shape[:2]

    def corners(values):
        # What is drawn stays on the canvas (a box of an untrained model can reach far
        # beyond the C int range that OpenCV takes, or be NaN); the numbers are the caller's.
        x1, y1, x2, y2 = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=1e9, neginf=-1e9)
        return (
            int(round(np.clip(x1, -1, width))),
            int(round(np.clip(y1, -1, height))),
            int(round(np.clip(x2, -1, width))),
            int(round(np.clip(y2, -1, height))),
        )

    for row in ground_truth:
        x1, y1, x2, y2 = corners(row[1:5])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (255, 255, 255), 1)
    for row in detections:
        class_id = int(row[0])
        x1, y1, x2, y2 = corners(row[2:6])
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
