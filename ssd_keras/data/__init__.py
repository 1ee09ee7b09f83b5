"""Data: reading data sets, building batches, transforming images and boxes (NumPy, OpenCV).

Modules: `generator` (`DataGenerator`: loading, batches, and thin entry points to the
parts), `loading` (`DataSource` and `load_dataset`: a data set from its files;
`read_classes`), `annotations` (CSV, VOC XML and COCO JSON readers), `hdf5_io`,
`keras_adapter` (the `PyDataset` of `DataGenerator.keras_dataset`, the only module here
that imports Keras, when it is used), `batch_workers` (worker processes and shared
memory), `synthetic_shapes` (the demo's data set), and the subpackages `transforms` (every
transformation) and `augmentation` (the original's four chains).
"""

from ssd_keras.data.generator import VOC_CLASSES, DataGenerator
from ssd_keras.data.loading import DataSource, load_dataset, read_classes

__all__ = ["VOC_CLASSES", "DataGenerator", "DataSource", "load_dataset", "read_classes"]
