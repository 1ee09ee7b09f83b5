"""`Detector`: a trained SSD as one object that takes images of any size and returns their
detections in each image's own pixels, with class names, on Keras or onnxruntime.

A `Detector` loads a ``.keras`` file (any mode: a training-mode model gets the decoding
layer), an ``.onnx`` file exported by `ssd_keras.export`, or takes a Keras model. It reads
image files or takes arrays, converts them to 3 channels, resizes them to the model's input
(as the evaluation does), runs the model, and maps the boxes back onto the original images.

The runtimes, each the fastest call that this project has measured on its backend:

* **Keras on JAX**: one jitted ``stateless_call`` of the model, kept across calls (Keras'
  ``predict_on_batch`` gathers the variables and converts inputs and outputs on every call);
* **Keras on TensorFlow**: a ``tf.function`` compiled with XLA;
* **Keras on PyTorch**: the model exported once with ``torch.export`` (its graph of ATen
  ops, without Keras' Python work per layer), run under ``torch.inference_mode``;
* **onnxruntime**: an ``InferenceSession`` of the ONNX file (CPU, or CUDA where installed).

Example:
    >>> from ssd_keras import Detector
    >>> detector = Detector("demo_output/ssd7_shapes.keras")  # doctest: +SKIP
    >>> [found] = detector("examples/shapes.jpg")  # doctest: +SKIP
    >>> found.class_names, found.scores, found.boxes  # doctest: +SKIP
"""

import dataclasses
import json
import math
import os

import numpy as np

from ssd_keras.data.generator import rgb_image
from ssd_keras.encoding.decoding_config import DISPLAY_DECODING
from ssd_keras.errors import ArgumentError, NotAModelError
from ssd_keras.export.onnx import METADATA_KEY

RUNTIMES = ("auto", "keras", "onnxruntime")


@dataclasses.dataclass
class Detections:
    """The detections of one image, best first, in the image's own pixels.

    Attributes:
        boxes: float64 ``(k, 4)``, ``xmin, ymin, xmax, ymax``.
        scores: float64 ``(k,)`` confidences.
        class_ids: int ``(k,)`` class ids (1 to n; 0 is the background).
        class_names: the ``k`` class names (the ids as text where the names are unknown).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list

    def __len__(self):
        return len(self.scores)

    def to_records(self, digits=4):
        """The detections as JSON-ready dicts (``class_id``, ``class``, ``confidence``,
        ``xmin`` ...), coordinates to 0.1 pixel; a non-finite number (an untrained model's
        box reaching to infinity) becomes None."""

        def number(value, places):
            return round(float(value), places) if math.isfinite(value) else None

        return [
            dict(
                class_id=int(c),
                **{"class": name},
                confidence=number(s, digits),
                xmin=number(b[0], 1),
                ymin=number(b[1], 1),
                xmax=number(b[2], 1),
                ymax=number(b[3], 1),
            )
            for c, name, s, b in zip(self.class_ids, self.class_names, self.scores, self.boxes)
        ]


class Detector:
    """Detects objects in images of any size with a trained SSD (module docstring).

    Args:
        model: a ``.keras`` or ``.onnx`` file, or a Keras model (any mode).
        class_names: the class names, 'background' first; default: those stored in the
            file (`ssd-keras train` and the demo store them), else ``class_1``, ...
        runtime: 'keras', 'onnxruntime', or 'auto' (onnxruntime for ``.onnx`` files).
        confidence_thresh, iou_threshold, top_k, nms_max_output_size: the decoding
            (default: the display settings, 0.5). An ONNX file decodes with the settings
            it was exported with; here only a higher threshold or a smaller `top_k` can be
            applied.
        batch_size: images per call of the model.

    Raises:
        FileNotFoundError: for a missing file.
        NotAModelError: for a file that is not a model.
        ArgumentError: for an unknown runtime, or class names that do not fit the model.
    """

    def __init__(
        self,
        model,
        class_names=None,
        runtime="auto",
        confidence_thresh=None,
        iou_threshold=None,
        top_k=None,
        nms_max_output_size=None,
        batch_size=8,
    ):
        if runtime not in RUNTIMES:
            raise ArgumentError(f"Expected `runtime` to be one of {set(RUNTIMES)}. Received: runtime={runtime!r}")
        given = dict(
            confidence_thresh=confidence_thresh,
            iou_threshold=iou_threshold,
            top_k=top_k,
            nms_max_output_size=nms_max_output_size,
        )
        decoding = {name: getattr(DISPLAY_DECODING, name) if value is None else value for name, value in given.items()}
        self.batch_size = int(batch_size)
        onnx_file = isinstance(model, (str, os.PathLike)) and os.fspath(model).endswith(".onnx")
        if runtime == "onnxruntime" or onnx_file:
            if not onnx_file:
                raise ArgumentError(f"runtime='onnxruntime' runs .onnx files. Received: {model!r}")
            self._engine = _OnnxEngine(os.fspath(model), decoding)
        else:
            self._engine = _KerasEngine(model, decoding)
        stored = self._engine.class_names
        n_classes = self._engine.n_classes
        if n_classes is None:  # an ONNX file made elsewhere: its classes are not known
            if class_names is None:
                raise ArgumentError(
                    f"{model} does not say its classes (it was not exported by ssd_keras): give `class_names`"
                )
            n_classes = len(class_names) - (1 if list(class_names)[0] == "background" else 0)
            self._engine.n_classes = n_classes
        if class_names is not None:
            class_names = list(class_names)
            if class_names[0] != "background":
                class_names = ["background", *class_names]
            if len(class_names) - 1 != n_classes:
                raise ArgumentError(f"`class_names` names {len(class_names) - 1} classes, the model has {n_classes}")
        self.class_names = class_names or stored or ["background"] + [f"class_{i}" for i in range(1, n_classes + 1)]

    @property
    def runtime(self):
        """Where the model runs: 'keras-jax', 'keras-tensorflow', 'keras-torch' or 'onnxruntime'."""
        return self._engine.name

    @property
    def input_size(self):
        """``(height, width)`` of the images the model takes."""
        return self._engine.input_size

    @property
    def n_classes(self):
        """The number of classes, background not counted."""
        return self._engine.n_classes

    def predict_on_batch(self, images):
        """Detections of images already at the model's input size.

        Args:
            images: ``(batch, height, width, 3)``, uint8 or float in 0-255.

        Returns:
            float32 ``(batch, top_k, 6)`` rows ``[class_id, confidence, xmin, ymin, xmax,
            ymax]`` in the input's pixels, best first, zero rows after the last detection
            (what a decoding Keras model returns, so the `Evaluator` takes a `Detector`).
        """
        return self._engine.run(np.asarray(images))

    def __call__(self, images):
        """Detects objects in one image or a list of images.

        Args:
            images: a file path, an image array ``(height, width[, channels])`` (uint8,
                RGB), or a list of them.

        Returns:
            a list with one `Detections` per image, in its own pixels.

        Raises:
            DatasetError: naming an image file that is missing or cannot be decoded.
        """
        single = isinstance(images, (str, os.PathLike, np.ndarray))
        images = [images] if single else list(images)
        results = []
        for start in range(0, len(images), self.batch_size):
            results += self._detect([rgb_image(image) for image in images[start : start + self.batch_size]])
        return results

    def _detect(self, images):
        from ssd_keras.data.transforms.geometric import Resize

        resize = Resize(*self.input_size)
        resized = [resize(image, return_inverter=True) for image in images]
        found = []
        for (_, to_image), rows in zip(resized, self.predict_on_batch(np.stack([image for image, _ in resized]))):
            rows = to_image(rows[rows[:, 1] > 0])  # float64, in the image's own pixels
            ids = rows[:, 0].astype(int)
            names = [self.class_names[c] if 0 <= c < len(self.class_names) else str(c) for c in ids]
            found.append(Detections(rows[:, 2:6], rows[:, 1], ids, names))
        return found


# ------------------------------------------------------------------------------------ engines


class _KerasEngine:
    """A decoding Keras model, called the fastest way its backend offers (module docstring)."""

    def __init__(self, model, decoding):
        from ssd_keras.inference.loading import decoding_model
        from ssd_keras.inference.prediction import input_size
        from ssd_keras.models.decoding import n_classes_of
        from ssd_keras.models.files import read_info

        is_file = isinstance(model, (str, os.PathLike))
        self.class_names = read_info(os.fspath(model)).get("class_names") if is_file else None
        model = decoding_model(model, **decoding)
        import keras  # after `load_detector`, which names a file that is no model before Keras loads

        self.model = model
        self.n_classes = n_classes_of(model)
        self.input_size = input_size(model)
        self.backend = keras.backend.backend()
        self.name = f"keras-{self.backend}"
        self._call = {"jax": self._jax, "tensorflow": self._tensorflow, "torch": self._torch}[self.backend]()

    def _jax(self):
        import jax

        model = self.model
        state = [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]
        call = jax.jit(
            lambda trainable, other, x: model.stateless_call(trainable, other, x.astype("float32"), training=False)[0]
        )
        return lambda images: np.asarray(call(*state, images))

    def _tensorflow(self):
        import tensorflow as tf

        model = self.model

        @tf.function(jit_compile=True, reduce_retracing=True)
        def call(images):
            return model(tf.cast(images, tf.float32), training=False)

        return lambda images: call(tf.convert_to_tensor(images)).numpy()

    def _torch(self):
        import torch

        from ssd_keras.export.onnx import exported_torch_module

        module = exported_torch_module(self.model)

        def call(images):
            with torch.inference_mode():
                return module(torch.from_numpy(np.ascontiguousarray(images))).cpu().numpy()

        return call

    def run(self, images):
        return np.asarray(self._call(images), dtype=np.float32)


class _OnnxEngine:
    """An ONNX file exported by `ssd_keras.export`, run by onnxruntime."""

    def __init__(self, path, decoding):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Model file not found: {path}")
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError('Running .onnx files needs onnxruntime: pip install "ssd-keras[onnx]"') from error
        try:
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # errors only, not each constant the optimizer drops
            self.session = onnxruntime.InferenceSession(path, options, providers=onnxruntime.get_available_providers())
        except Exception as error:  # onnxruntime raises its own classes for unreadable files
            raise NotAModelError(f"Not an ONNX model file: {path} ({type(error).__name__}: {error})") from None
        metadata = json.loads(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.dtype = np.uint8 if "uint8" in model_input.type else np.float32
        self.input_size = tuple(int(n) for n in model_input.shape[1:3])
        self.class_names = metadata.get("class_names")
        self.n_classes = metadata.get("n_classes") or (len(self.class_names) - 1 if self.class_names else None)
        exported = metadata.get("decoding", {})
        if decoding["confidence_thresh"] < exported.get("confidence_thresh", 0.0):
            raise ArgumentError(
                f"{path} decodes detections above {exported['confidence_thresh']}; a lower "
                f"confidence_thresh ({decoding['confidence_thresh']}) needs a model exported with one"
            )
        self.confidence_thresh, self.top_k = decoding["confidence_thresh"], decoding["top_k"]
        self.name = "onnxruntime"

    def run(self, images):
        rows = self.session.run(None, {self.input_name: images.astype(self.dtype, copy=False)})[0]
        rows = rows[:, : self.top_k].copy()
        rows[rows[:, :, 1] <= self.confidence_thresh] = 0  # the rows kept stay first: scores are sorted
        return rows
