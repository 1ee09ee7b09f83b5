"""SSD (Single Shot MultiBox Detector) for Keras 3, on TensorFlow, JAX or PyTorch.

A port of ssd_keras. The package is organised in layers; each imports only those above it
in this list:

* `ssd_keras.errors`, `ssd_keras.utils`: the exception classes and shared helpers
  (backend selection, atomic file writes, random generators, plotting);
* `ssd_keras.boxes`: box geometry, anchors, box coding, matching, the packed tensor layout;
* `ssd_keras.encoding`: `SSDInputEncoder` (training targets) and the NumPy decoders;
* `ssd_keras.layers`, `ssd_keras.losses`: the Keras layers and `SSDLoss`, in `keras.ops`;
* `ssd_keras.models`: the SSD300, SSD512 and SSD7 builders, presets, model files, weights;
* `ssd_keras.data`: `DataGenerator`, the transformations and augmentation chains;
* `ssd_keras.evaluation`: Pascal VOC mAP and COCO metrics;
* `ssd_keras.export`: ONNX, SavedModel and TFLite files, INT8 quantisation;
* `ssd_keras.inference`: loading detectors, `Detector`, predicting on image files;
* `ssd_keras.training`: the training engine (`TrainingConfig`, `train`);
* `ssd_keras.demo`, `ssd_keras.cli`: the demo and the ``ssd-keras`` command.

`ssd_keras.Detector` (from `ssd_keras.inference.detector`) runs a trained model on images
of any size, on Keras or onnxruntime. Importing `ssd_keras` imports neither Keras nor a
backend; `Detector` is imported when first named. The original's module paths
(``from models.keras_ssd300 import ssd_300``) work from a clone of the repository, whose
root holds them as re-exports, and anywhere after `use_original_paths()`.
"""

from ssd_keras._original_paths import use_original_paths

__version__ = "0.2.0"

__all__ = ["Detector", "__version__", "use_original_paths"]


def __getattr__(name):
    """`Detector`, imported on first use (it needs NumPy and OpenCV, not Keras, until used)."""
    if name == "Detector":
        from ssd_keras.inference.detector import Detector

        return Detector
    raise AttributeError(f"module 'ssd_keras' has no attribute {name!r}")
