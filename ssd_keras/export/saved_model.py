"""Export for serving: a SavedModel taking uint8 images, and TFLite.

The SavedModel's ``serve`` signature takes ``uint8`` images ``(batch, height, width, 3)``
and returns the decoded detections ``(batch, top_k, 6)`` (``[class, confidence, xmin,
ymin, xmax, ymax]`` in the model's input frame, zero rows where there are fewer boxes);
TensorFlow alone loads it (``tf.saved_model.load(path).serve(images)``), no Keras and
no ssd_keras code.

TFLite: models with either decoding layer convert with the built-in TFLite ops only
(the layers are written in `keras.ops`; their greedy NMS becomes a ``WHILE`` loop).
``allow_flex=True`` admits TensorFlow ops that TFLite lacks, for models of your own.

Both need the TensorFlow backend; under JAX or PyTorch they raise `BackendError`.
"""

import os


def export_saved_model(model, path):
    """Writes `model` (decoding included) as a SavedModel with a uint8 ``serve`` signature.

    Returns:
        `path`.

    Raises:
        ValueError: if the model does not decode (add the layer with
            `inference.add_decoding` first).
    """
    import keras

    from ssd_keras.utils.backend import require_backend

    require_backend("SavedModel export", "tensorflow")
    import tensorflow as tf

    if model.outputs[0].shape[-1] != 6 or len(model.outputs[0].shape) != 3:
        raise ValueError(
            f"Expected a model with decoded output (batch, top_k, 6). Received: output shape {model.outputs[0].shape}"
        )
    height, width, channels = model.inputs[0].shape[1:]

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return model(tf.cast(images, tf.float32), training=False)

    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec((None, height, width, channels), tf.uint8, name="images")],
    )
    archive.write_out(path, verbose=False)
    return path


def convert_tflite(saved_model_path, path, allow_flex=False, int8=False):
    """Converts a SavedModel from `export_saved_model` to a TFLite file.

    Args:
        saved_model_path: the SavedModel directory.
        path: the ``.tflite`` file to write.
        allow_flex: allow TensorFlow ops that TFLite lacks (needs the Flex delegate at run time).
        int8: INT8 weights with dynamic-range quantisation: TFLite's kernels quantise each
            convolution's input on the fly, the decoding stays float32. (Full-integer
            quantisation, calibrated on images, is not offered: TensorFlow 2.21's TFLite
            calibrator crashes the process on the decoding's NMS loops when many boxes
            pass the confidence threshold.)

    Returns:
        `path`.

    Raises:
        ConverterError: (TensorFlow's) when an op has no TFLite kernel and `allow_flex` is False.
        BackendError: under a Keras backend other than TensorFlow.
    """
    from ssd_keras.utils.backend import require_backend

    require_backend("TFLite conversion", "tensorflow")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_path, signature_keys=["serve"])
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    data = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def tflite_interpreter(path):
    """An interpreter of the ``.tflite`` file `path`: LiteRT's (``pip install
    ai-edge-litert``, the ``export`` extra) when installed, else TensorFlow's deprecated
    ``tf.lite.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def run_tflite(path, images):
    """Runs a converted model on uint8 images; returns the detections array."""
    import numpy as np

    runner = tflite_interpreter(path).get_signature_runner("serve")
    outputs = runner(images=np.asarray(images, dtype=np.uint8))
    return next(iter(outputs.values()))
