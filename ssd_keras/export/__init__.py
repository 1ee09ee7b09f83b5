"""Exporting a trained SSD, decoding included, for serving outside Keras.

* `export_model`: one call for every format (what ``ssd-keras export`` runs);
* `onnx`: ONNX from TensorFlow, JAX or PyTorch, for onnxruntime, TensorRT, OpenVINO;
* `saved_model`: a TensorFlow SavedModel and TFLite (TensorFlow backend);
* `quantize`: INT8 post-training quantisation of ONNX and TFLite files.

Every exported model takes a batch of images ``(batch, height, width, 3)`` (uint8 by
default) and returns the detections ``(batch, top_k, 6)``, rows ``[class_id, confidence,
xmin, ymin, xmax, ymax]`` in the input's pixels; `ssd_keras.Detector` runs ONNX files with
images of any size.
"""

import os

from ssd_keras.errors import ArgumentError

FORMATS = ("onnx", "saved_model", "tflite")


def export_model(model, path, format="onnx", class_names=None, input_dtype="uint8", int8=False, calibration=None):
    """Exports a decoding SSD to `path` in `format`.

    Args:
        model: a Keras model with decoded output (see `ssd_keras.inference.loading.add_decoding`).
        path: the file (``.onnx``, ``.tflite``) or folder (SavedModel) to write.
        format: 'onnx', 'saved_model' or 'tflite' (the last two need the TensorFlow backend).
        class_names: stored in an ONNX file's metadata ('background' first).
        input_dtype: ONNX: 'uint8' or 'float32' images (SavedModel and TFLite take uint8).
        int8: quantise to INT8: ONNX statically (weights and activations, calibrated on
            `calibration`), TFLite by dynamic range (weights; see `convert_tflite`).
        calibration: ONNX with `int8`: calibration images at the model's input size
            (uint8 ``(n, h, w, 3)``, see `quantize.calibration_images`).

    Returns:
        `path`.

    Raises:
        ArgumentError: for an unknown format, ONNX `int8` without calibration images,
            `int8` with a SavedModel, or a model that does not decode.
        BackendError: for SavedModel and TFLite under another backend than TensorFlow.
    """
    import tempfile

    from ssd_keras.export.onnx import check_decoding_model, export_onnx

    if format not in FORMATS:
        raise ArgumentError(f"Expected `format` to be one of {set(FORMATS)}. Received: format={format!r}")
    if int8 and format == "saved_model":
        raise ArgumentError("INT8 quantisation is for 'onnx' and 'tflite' files, not a SavedModel")
    if int8 and format == "onnx" and calibration is None:
        raise ArgumentError("INT8 quantisation of ONNX needs calibration images (`calibration`, --calibration)")
    check_decoding_model(model)
    if format == "onnx":
        if not int8:
            return export_onnx(model, path, input_dtype, class_names=class_names)
        from ssd_keras.export.quantize import quantize_onnx

        with tempfile.TemporaryDirectory(prefix="ssd_keras_export_") as folder:
            float_file = export_onnx(model, os.path.join(folder, "float.onnx"), input_dtype, class_names=class_names)
            return quantize_onnx(float_file, path, calibration)
    from ssd_keras.export.saved_model import convert_tflite, export_saved_model

    if format == "saved_model":
        return export_saved_model(model, path)
    with tempfile.TemporaryDirectory(prefix="ssd_keras_export_") as folder:
        saved = export_saved_model(model, os.path.join(folder, "saved_model"))
        return convert_tflite(saved, path, int8=int8)
