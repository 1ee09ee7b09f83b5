"""INT8 post-training quantisation of ONNX files (onnxruntime's static quantisation).

It calibrates on images from the training data: the convolutions' activations are
observed on them, and each tensor's INT8 scale chosen to cover its range. Only the
convolutions are quantised (weights per output channel, activations per tensor; a ReLU
right after one becomes the lower end of its output range); the decoding and its NMS
loops stay in float32, so boxes and scores keep their precision.
(TFLite files are quantised by `saved_model.convert_tflite`.)

Example:
    >>> from ssd_keras.export.quantize import calibration_images, quantize_onnx
    >>> images = calibration_images(["data/shapes/JPEGImages"], (128, 128), limit=64)  # doctest: +SKIP
    >>> quantize_onnx("ssd7.onnx", "ssd7_int8.onnx", images)  # doctest: +SKIP
"""

import os
import tempfile

import numpy as np

from ssd_keras.errors import ArgumentError

DEFAULT_CALIBRATION_IMAGES = 100


def calibration_images(sources, input_size, limit=DEFAULT_CALIBRATION_IMAGES, seed=0):
    """Up to `limit` images for calibration, resized to the model's input, as uint8 arrays.

    Args:
        sources: image files and folders of images (as ``ssd-keras predict`` takes them), or
            a `DataGenerator` (its images).
        input_size: ``(height, width)`` of the model.
        limit: the most images taken (chosen at random, seeded, when there are more).
        seed: the seed of that choice.

    Returns:
        a uint8 array ``(n, height, width, 3)``.

    Raises:
        ArgumentError: when no image is found.
    """
    from ssd_keras.data.generator import rgb_image
    from ssd_keras.data.transforms.geometric import Resize

    rng = np.random.default_rng(seed)
    if hasattr(sources, "dataset_size"):  # a DataGenerator
        indices = rng.permutation(sources.dataset_size)[:limit]
        images = [sources._image(int(i)) for i in sorted(indices)]
    else:
        from ssd_keras.data.loading import find_images

        paths = find_images(list(sources))
        if len(paths) > limit:
            paths = [paths[i] for i in sorted(rng.permutation(len(paths))[:limit])]
        images = paths
    if not len(images):
        raise ArgumentError("No calibration images found")
    resize = Resize(*input_size)
    return np.stack([resize(rgb_image(image)) for image in images]).astype(np.uint8)


def quantize_onnx(source, path, images):
    """Writes an INT8 copy of the ONNX file `source` (QDQ format, its convolutions quantised
    and the ReLUs that follow them folded in), calibrated on `images`.

    Args:
        source: an ``.onnx`` file from `export_onnx`.
        path: the quantised file to write.
        images: calibration images at the model's input size, uint8 ``(n, h, w, 3)``.

    Returns:
        `path`.
    """
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    dtype = np.uint8 if "uint8" in model_input.type else np.float32

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(images)

        def get_next(self):
            image = next(self.batches, None)
            return None if image is None else {model_input.name: image[None].astype(dtype)}

    from ssd_keras.export.onnx import quiet_exporters

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with quiet_exporters(), tempfile.TemporaryDirectory(prefix="ssd_keras_quant_") as folder:
        prepared = os.path.join(folder, "prepared.onnx")
        quant_pre_process(source, prepared, skip_symbolic_shape=True)  # shape inference, folded constants
        quantize_static(
            prepared,
            path,
            Images(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # A ReLU after a convolution is folded into the convolution's output range
            # (clipping at 0 is what the quantised output's range [0, max] does).
            op_types_to_quantize=["Conv", "Relu"],
        )
    _copy_metadata(source, path)
    return path


def _copy_metadata(source, path):
    """The source's metadata (class names, input size, decoding) in the quantised file too."""
    import onnx

    metadata = onnx.load(source, load_external_data=False).metadata_props
    quantized = onnx.load(path)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(metadata)
    onnx.save(quantized, path)
