"""A data set in one HDF5 file: `write_dataset` and `read_dataset`, behind
`DataGenerator.create_hdf5_dataset` and `DataGenerator.load_hdf5_dataset`.

Images are stored as flat uint8 arrays with their shapes (3 channels), labels as
float32 with their shapes, image ids as strings, the evaluation-neutral flags as bools.
The file is written under a temporary name and renamed when complete, and marked
``complete``, so an interrupted run leaves nothing that loads as a data set.
"""

import json

import h5py
import numpy as np
from tqdm import tqdm

from ssd_keras.errors import DatasetError
from ssd_keras.utils.files import atomic_write, open_hdf5


def write_dataset(
    file_path,
    size,
    image_of,
    labels,
    image_ids,
    eval_neutral,
    labels_format,
    labels_output_format,
    resize=False,
    variable_image_size=True,
    verbose=True,
):
    """Writes a data set of `size` items to `file_path`.

    Args:
        file_path: the ``.h5`` file.
        size: number of items.
        image_of: ``image_of(i)`` -> image `i` as a uint8 array.
        labels, image_ids, eval_neutral: the data set's lists (or None).
        labels_format: column indices of the labels (for resizing them).
        labels_output_format: the column names, stored in the file.
        resize: False or ``(height, width)``: resize the images, and scale their labels
            with them (the original left the labels as they were).
        variable_image_size: recorded in the file (False when resizing).
        verbose: progress bar.
    """
    from ssd_keras.data.transforms.geometric import Resize
    from ssd_keras.data.transforms.photometric import ConvertTo3Channels

    resize_op = Resize(*resize, labels_format=labels_format) if resize else None
    n_columns = len(labels_output_format)
    with atomic_write(file_path, ".h5.part") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["has_labels"] = labels is not None
            f.attrs["has_image_ids"] = image_ids is not None
            f.attrs["has_eval_neutral"] = eval_neutral is not None
            f.attrs["variable_image_size"] = bool(variable_image_size and not resize)
            f.attrs["labels_output_format"] = json.dumps(list(labels_output_format))
            images = f.create_dataset("images", shape=(size,), dtype=h5py.vlen_dtype(np.uint8))
            shapes = f.create_dataset("image_shapes", shape=(size, 3), dtype=np.int32)
            if labels is not None:
                stored_labels = f.create_dataset("labels", shape=(size,), dtype=h5py.vlen_dtype(np.float32))
                label_shapes = f.create_dataset("label_shapes", shape=(size, 2), dtype=np.int32)
            if image_ids is not None:
                ids = f.create_dataset("image_ids", shape=(size,), dtype=h5py.string_dtype())
            if eval_neutral is not None:
                neutral = f.create_dataset("eval_neutral", shape=(size,), dtype=h5py.vlen_dtype(np.bool_))
            for i in tqdm(range(size), desc="Creating HDF5 dataset", disable=not verbose):
                image = ConvertTo3Channels()(image_of(i))
                item_labels = None if labels is None else labels[i]
                if resize_op is not None:
                    image, item_labels = (
                        resize_op(image, item_labels) if item_labels is not None else (resize_op(image), None)
                    )
                images[i] = image.reshape(-1)
                shapes[i] = image.shape
                if labels is not None:
                    stored_labels[i] = np.asarray(item_labels, dtype=np.float32).reshape(-1)
                    label_shapes[i] = np.asarray(item_labels).reshape(-1, n_columns).shape
                if image_ids is not None:
                    ids[i] = str(image_ids[i])
                if eval_neutral is not None:
                    neutral[i] = np.asarray(eval_neutral[i], dtype=bool).reshape(-1)
            f.attrs["complete"] = True


def read_dataset(path, verbose=True):
    """Opens a file of `write_dataset` read-only.

    Returns:
        dict with 'file' (the open `h5py.File`, for reading images), 'size',
        'image_shapes', and 'labels', 'image_ids', 'eval_neutral' (each None when the
        file has none).

    Raises:
        DatasetError: if the file is missing, unreadable, or not a complete data set.
    """
    f = open_hdf5(path, "HDF5 data set", DatasetError, DatasetError)
    if "images" not in f or "image_shapes" not in f or not f.attrs.get("complete", True):
        f.close()
        raise DatasetError(f"{path} is not a complete data set written by create_hdf5_dataset.")
    size = len(f["images"])
    out = dict(file=f, size=size, image_shapes=f["image_shapes"][()], labels=None, image_ids=None, eval_neutral=None)
    if f.attrs.get("has_labels", False):
        shapes = f["label_shapes"][()]
        flat = f["labels"]
        out["labels"] = [
            np.asarray(flat[i], dtype=np.float64).reshape(shapes[i])
            for i in tqdm(range(size), desc="Loading labels", disable=not verbose)
        ]
    if f.attrs.get("has_image_ids", False):
        out["image_ids"] = [i.decode("utf8") if isinstance(i, bytes) else str(i) for i in f["image_ids"][()]]
    if f.attrs.get("has_eval_neutral", False):
        out["eval_neutral"] = [np.asarray(v, dtype=bool) for v in f["eval_neutral"][()]]
    return out
