"""The data package's parts: parsers, HDF5 and the Keras adapter in modules of their own
(the data pipeline imports no Keras until a Keras dataset is asked for), and
transformations that never write into objects their caller owns."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
from ssd_keras.data.generator import DataGenerator
from ssd_keras.data.transforms.geometric import RandomTranslate, Resize
from ssd_keras.data.transforms.patch_sampling import PatchCoordinateGenerator, RandomPatch
from ssd_keras.data.transforms.validation import BoxFilter, ImageValidator

# Labels with the class in the last column: every transformation must read their layout.
LAST_CLASS = ("xmin", "ymin", "xmax", "ymax", "class_id")
LAST_CLASS_FORMAT = {name: i for i, name in enumerate(LAST_CLASS)}


def test_the_data_pipeline_imports_no_keras():
    code = (
        "import sys; import ssd_keras.data.generator as g; "
        "import ssd_keras.data.augmentation.original_ssd, ssd_keras.evaluation.voc; "
        "print('keras' in sys.modules, g.DataGenerator.parse_xml.__doc__ is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]


def test_the_keras_dataset_class_is_defined_once_in_its_module():
    import pickle

    from ssd_keras.data import generator as module
    from ssd_keras.data import keras_adapter

    assert module.DataGeneratorDataset is keras_adapter.DataGeneratorDataset  # the old name still works
    dataset = DataGenerator(filenames=["a.png"], labels=[np.array([[1, 0, 0, 5, 5]], float)], verbose=False)
    data = dataset.keras_dataset(batch_size=1, workers=1)
    assert type(pickle.loads(pickle.dumps(data))) is keras_adapter.DataGeneratorDataset


def test_batches_leave_the_callers_transformations_as_they_were():
    # The original (and this port until now) wrote the data set's labels_format into the
    # caller's transformations on every batch.
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    dataset = DataGenerator(
        filenames=["a.png"],
        labels=[np.array([[10, 5, 40, 30, 2]], float)],
        labels_output_format=LAST_CLASS,
        verbose=False,
    )
    dataset.images = [image]
    resize = Resize(20, 30)  # the default layout: class first
    before = dict(resize.labels_format)
    x, labels = dataset.make_batch([0], [resize], returns=("processed_images", "processed_labels"))
    assert resize.labels_format == before
    np.testing.assert_allclose(labels[0], [[5, 2.5, 20, 15, 2]])  # read in the data set's layout: class last
    batches = dataset.generate(batch_size=1, transformations=[resize], returns=("processed_labels",))
    np.testing.assert_allclose(next(batches)[0][0], [[5, 2.5, 20, 15, 2]])
    assert resize.labels_format == before


def test_transformations_keep_their_own_filters_and_validators():
    box_filter = BoxFilter(labels_format=None)
    validator = ImageValidator(bounds=(0.3, 1.0), n_boxes_min=1)
    resize = Resize(20, 30, box_filter=box_filter, labels_format=LAST_CLASS_FORMAT)
    patch = RandomPatch(
        PatchCoordinateGenerator(rng=0),
        box_filter=box_filter,
        image_validator=validator,
        labels_format=LAST_CLASS_FORMAT,
        rng=0,
    )
    translate = RandomTranslate(
        box_filter=box_filter, image_validator=validator, labels_format=LAST_CLASS_FORMAT, prob=1.0, rng=0
    )
    image = np.zeros((40, 60, 3), np.uint8)
    labels = np.array([[10, 5, 40, 30, 2]], float)
    for transform in (resize, patch, translate, SSDDataAugmentation(30, 30, labels_format=LAST_CLASS_FORMAT, rng=0)):
        transform(image, labels)
        assert transform.labels_format == LAST_CLASS_FORMAT
    # The caller's objects: untouched (before, every call set their layout to the transformation's).
    assert box_filter.labels_format["class_id"] == 0 and validator.labels_format["class_id"] == 0
    assert validator.box_filter.labels_format["class_id"] == 0
    # The transformations' own copies follow their layout, through the setter.
    assert resize.box_filter is not box_filter and resize.box_filter.labels_format == LAST_CLASS_FORMAT
    assert patch.image_validator.box_filter.labels_format == LAST_CLASS_FORMAT
    resize.labels_format = None
    assert resize.box_filter.labels_format["class_id"] == 0


def test_a_missing_or_foreign_hdf5_data_set_is_named(tmp_path):
    from ssd_keras.errors import DatasetError

    missing = tmp_path / "missing.h5"
    with pytest.raises(DatasetError, match=f"HDF5 data set not found: {missing}"):
        DataGenerator(hdf5_dataset_path=str(missing))
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5")
    with pytest.raises(DatasetError, match=f"{text} is not a readable HDF5 file"):
        DataGenerator(hdf5_dataset_path=str(text))
