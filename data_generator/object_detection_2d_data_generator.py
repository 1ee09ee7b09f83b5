"""`DataGenerator`: reads object-detection data sets (Pascal VOC XML, MS COCO JSON, CSV,
HDF5), and serves batches of transformed images and encoded labels to Keras.

A data set is four parallel lists: image file names, labels (one ``(k, 5)`` array per
image, columns in `labels_output_format`), image ids and "evaluation-neutral" flags
(one bool per box: Pascal VOC's *difficult*). `generate()` is the original infinite
Python generator; `keras_dataset()` wraps the same batches in a `keras.utils.PyDataset`
for ``model.fit`` (Keras 3 has no ``fit_generator``), with a known length and
parallel workers.
"""

import copy
import csv
import json
import math
import os
import pickle
import tempfile
import threading
import warnings
from collections import defaultdict

import cv2
import h5py
import numpy as np
from tqdm import tqdm

from data_generator.batch_workers import BatchWorkers, WorkerError, fork_available, shared_bytes
from data_generator.object_detection_2d_image_boxes_validation_utils import BoxFilter
from data_generator.transform_utils import accepts_inverter
from ssd_encoder_decoder.ssd_input_encoder import DegenerateBoxError, SSDInputEncoder

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
               "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
# The order in which `generate` yields the outputs that `returns` asks for.
RETURN_ORDER = ("processed_images", "encoded_labels", "matched_anchors", "processed_labels", "filenames", "image_ids",
                "evaluation-neutral", "inverse_transform", "original_images", "original_labels")
CSV_COLUMNS = ("image_name", "xmin", "xmax", "ymin", "ymax", "class_id")
DEGENERATE_BOX_HANDLING = ("remove", "warn", "error")


class DegenerateBatchError(Exception):
    """A batch that cannot be formed: no image left, or images of different sizes."""


class DatasetError(Exception):
    """A data set that cannot be read or used: missing or unreadable files, bad annotations."""


def load_image(path):
    """Reads an image file as a uint8 array: HxWx3 RGB, HxWx4 RGBA or HxW grayscale.

    Raises:
        DatasetError: naming the file, if it is missing or cannot be decoded.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"Image file not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"Cannot decode image file: {path}")
    if image.dtype != np.uint8:
        image = np.round(image / (np.iinfo(image.dtype).max / 255.0)).astype(np.uint8) if image.dtype.kind == "u" else image.astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _load_list(value, name):
    """A list from a list/tuple or from a pickle file path."""
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    if isinstance(value, str):
        try:
            with open(value, "rb") as f:
                return list(pickle.load(f))
        except (OSError, pickle.UnpicklingError, EOFError) as error:
            raise DatasetError(f"Cannot read `{name}` from {value}: {error}") from None
    raise ValueError(f"Expected `{name}` to be a list, a tuple or the path of a pickle file. Received: {type(value).__name__}")


def _labels_array(rows, n_columns=5):
    return np.array(rows, dtype=np.float64).reshape(-1, n_columns)


class DataGenerator:
    """An object-detection data set and the batches made from it.

    Args:
        load_images_into_memory: decode all images once and keep them (fast epochs,
            memory permitting).
        hdf5_dataset_path: open a data set written by `create_hdf5_dataset`.
        filenames: image paths (list or tuple), or a pickle file or text file of them
            (`filenames_type`); a text file holds one name per line, relative to
            `images_dir`.
        filenames_type: 'text' or 'pickle'.
        images_dir: directory of the names in a text `filenames` file.
        labels, image_ids, eval_neutral: lists (or pickle files) parallel to `filenames`.
        labels_output_format: the column names of the label arrays.
        verbose: progress bars.

    Raises:
        DatasetError: for unreadable list files or lists of different lengths.
    """

    def __init__(self, load_images_into_memory=False, hdf5_dataset_path=None, filenames=None, filenames_type="text", images_dir=None,
                 labels=None, image_ids=None, eval_neutral=None,
                 labels_output_format=("class_id", "xmin", "ymin", "xmax", "ymax"), verbose=True):
        self.labels_output_format = tuple(labels_output_format)
        missing = {"class_id", "xmin", "ymin", "xmax", "ymax"} - set(self.labels_output_format)
        if missing:
            raise ValueError(f"`labels_output_format` lacks {sorted(missing)}. Received: {labels_output_format}")
        self.labels_format = {name: i for i, name in enumerate(self.labels_output_format)}
        self.load_images_into_memory = load_images_into_memory
        self.images = None
        self.hdf5_dataset = None
        self.hdf5_dataset_path = hdf5_dataset_path
        self.verbose = verbose
        if isinstance(filenames, str) and filenames_type == "text":
            try:
                with open(filenames, "r", encoding="utf8") as f:  # text mode (the original read bytes)
                    names = [line.strip() for line in f if line.strip()]
            except OSError as error:
                raise DatasetError(f"Cannot read `filenames` from {filenames}: {error}") from None
            self.filenames = [os.path.join(images_dir, name) if images_dir else name for name in names]
        elif isinstance(filenames, str) and filenames_type != "pickle":
            raise ValueError(f"Expected `filenames_type` to be one of {{'text', 'pickle'}}. Received: filenames_type={filenames_type!r}")
        else:
            self.filenames = _load_list(filenames, "filenames")
        self.labels = _load_list(labels, "labels")
        if self.labels is not None:
            self.labels = [_labels_array(l, len(self.labels_output_format)) for l in self.labels]
        self.image_ids = _load_list(image_ids, "image_ids")
        self.eval_neutral = _load_list(eval_neutral, "eval_neutral")
        if hdf5_dataset_path is not None:
            self.load_hdf5_dataset(verbose=verbose)
        else:
            self._set_size()
            if load_images_into_memory and self.filenames:
                self.load_images()

    # ------------------------------------------------------------------ bookkeeping

    def _set_size(self):
        size = len(self.filenames) if self.filenames is not None else 0
        for name in ("labels", "image_ids", "eval_neutral"):
            value = getattr(self, name)
            if value is not None and self.filenames is not None and len(value) != size:
                raise DatasetError(f"`{name}` has {len(value)} entries but there are {size} images.")
        self.dataset_size = size
        self.dataset_indices = np.arange(size, dtype=np.int32)

    def load_images(self):
        """Decodes every image into `self.images` (see `load_images_into_memory`)."""
        names = tqdm(self.filenames, desc="Loading images into memory", disable=not self.verbose)
        self.images = [load_image(name) for name in names]
        self.load_images_into_memory = True

    def get_dataset(self):
        """``(filenames, labels, image_ids, eval_neutral)``."""
        return self.filenames, self.labels, self.image_ids, self.eval_neutral

    def get_dataset_size(self):
        return self.dataset_size

    def save_dataset(self, filenames_path="filenames.pkl", labels_path=None, image_ids_path=None, eval_neutral_path=None):
        """Pickles the lists (the ones whose path is given)."""
        for path, value in ((filenames_path, self.filenames), (labels_path, self.labels), (image_ids_path, self.image_ids),
                            (eval_neutral_path, self.eval_neutral)):
            if path is not None:
                with open(path, "wb") as f:
                    pickle.dump(value, f)

    def _finish_parse(self, ret, *values):
        if not self.filenames:
            warnings.warn("The parsed data set holds no images.", stacklevel=3)
        self._set_size()
        if self.load_images_into_memory:
            self.load_images()
        return values if ret else None

    def _box_row(self, class_id, xmin, ymin, xmax, ymax):
        values = {"class_id": class_id, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
        return [values[name] for name in self.labels_output_format]

    # ------------------------------------------------------------------ parsers

    def parse_csv(self, images_dir, labels_filename, input_format, include_classes="all", random_sample=False, ret=False, verbose=True):
        """Reads a CSV file with one box per row (after one header row).

        Args:
            images_dir: directory of the images.
            labels_filename: the CSV file.
            input_format: the order of the first six columns, a permutation of
                'image_name', 'xmin', 'xmax', 'ymin', 'ymax', 'class_id'.
            include_classes: 'all' or a list of class ids to keep.
            random_sample: False, or a fraction of the images to keep at random.
            ret: return ``(images, filenames, labels, image_ids)``.

        Coordinates may be floats (the original accepted integers only).

        Raises:
            DatasetError: naming the file and line of a malformed row.
        """
        if sorted(input_format) != sorted(CSV_COLUMNS):
            raise ValueError(f"Expected `input_format` to order the columns {list(CSV_COLUMNS)}. Received: {input_format}")
        column = {name: input_format.index(name) for name in CSV_COLUMNS}
        rows = []
        try:
            with open(labels_filename, newline="", encoding="utf8") as f:
                reader = csv.reader(f)
                next(reader, None)
                for line_number, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    try:
                        class_id = int(float(row[column["class_id"]]))
                        coords = [float(row[column[k]]) for k in ("xmin", "ymin", "xmax", "ymax")]
                    except (ValueError, IndexError):
                        raise DatasetError(f"{labels_filename}, line {line_number}: cannot read a box from {row}") from None
                    if include_classes == "all" or class_id in include_classes:
                        rows.append((row[column["image_name"]], class_id, *coords))
        except OSError as error:
            raise DatasetError(f"Cannot read {labels_filename}: {error}") from None
        boxes = defaultdict(list)
        for image_name, class_id, xmin, ymin, xmax, ymax in sorted(rows):
            boxes[image_name].append(self._box_row(class_id, xmin, ymin, xmax, ymax))
        names = sorted(boxes)
        if random_sample:
            names = [name for name in names if np.random.uniform(0, 1) < random_sample]
        self.filenames = [os.path.join(images_dir, name) for name in names]
        self.labels = [_labels_array(boxes[name]) for name in names]
        self.image_ids = [name.split(".")[0] for name in names]
        self.eval_neutral = None
        return self._finish_parse(ret, self.images, self.filenames, self.labels, self.image_ids)

    def parse_xml(self, images_dirs, image_set_filenames, annotations_dirs=(), classes=VOC_CLASSES, include_classes="all",
                  exclude_truncated=False, exclude_difficult=False, ret=False, verbose=True):
        """Reads Pascal VOC annotations (one XML file per image, BeautifulSoup).

        Args:
            images_dirs, image_set_filenames, annotations_dirs: parallel lists: the
                JPEG directory, the image-set file (one image id per line) and the
                annotation directory of each part (e.g. VOC2007 and VOC2012). Without
                annotation directories only the file names are read.
            classes: class names; the index of a name is its class id ('background' first).
            include_classes: 'all' or a list of class ids to keep.
            exclude_truncated, exclude_difficult: drop those objects.
            ret: return ``(images, filenames, labels, image_ids, eval_neutral)``.

        Coordinates are read as floats, as written (VOC's 1-based pixel values).
        `eval_neutral` marks the difficult objects.

        Raises:
            DatasetError: naming the file (and object) for a missing or unparsable
                file, an unknown class name or a malformed box.
        """
        from bs4 import BeautifulSoup

        classes = list(classes)
        self.classes = classes
        self.filenames, self.image_ids, self.labels, self.eval_neutral = [], [], [], []
        annotations_dirs = list(annotations_dirs or [])
        for k, (images_dir, set_file) in enumerate(zip(images_dirs, image_set_filenames)):
            try:
                with open(set_file, encoding="utf8") as f:
                    ids = [line.strip() for line in f if line.strip()]
            except OSError as error:
                raise DatasetError(f"Cannot read image set file {set_file}: {error}") from None
            annotations_dir = annotations_dirs[k] if k < len(annotations_dirs) else None
            for image_id in tqdm(ids, desc=f"Processing {os.path.basename(set_file)}", disable=not (verbose and self.verbose)):
                self.image_ids.append(image_id)
                self.filenames.append(os.path.join(images_dir, image_id + ".jpg"))
                if annotations_dir is None:
                    continue
                path = os.path.join(annotations_dir, image_id + ".xml")
                try:
                    with open(path, encoding="utf8") as f:
                        soup = BeautifulSoup(f, "xml")
                except OSError as error:
                    raise DatasetError(f"Cannot read annotation file {path}: {error}") from None
                if soup.find("annotation") is None:
                    raise DatasetError(f"{path} is not a Pascal VOC annotation (no <annotation> element).")
                boxes, neutral = [], []
                for i, obj in enumerate(soup.find_all("object")):
                    name = obj.find("name", recursive=False)
                    name = name.text.strip() if name is not None else None
                    if name not in classes:
                        raise DatasetError(f"{path}, object {i}: unknown class name {name!r} (not in `classes`).")
                    class_id = classes.index(name)
                    truncated = _flag(obj, "truncated")
                    difficult = _flag(obj, "difficult")
                    if (include_classes != "all" and class_id not in include_classes) or (exclude_truncated and truncated) or (
                            exclude_difficult and difficult):
                        continue
                    bndbox = obj.find("bndbox", recursive=False)
                    try:
                        coords = [float(bndbox.find(tag, recursive=False).text) for tag in ("xmin", "ymin", "xmax", "ymax")]
                    except (AttributeError, ValueError):
                        raise DatasetError(f"{path}, object {i} ({name}): missing or malformed <bndbox>.") from None
                    boxes.append(self._box_row(class_id, *coords))
                    neutral.append(difficult)
                self.labels.append(_labels_array(boxes))
                self.eval_neutral.append(np.array(neutral, dtype=bool))
        if not annotations_dirs:
            self.labels, self.eval_neutral = None, None
        return self._finish_parse(ret, self.images, self.filenames, self.labels, self.image_ids, self.eval_neutral)

    def parse_json(self, images_dirs, annotations_filenames, ground_truth_available=False, include_classes="all", ret=False, verbose=True):
        """Reads MS COCO annotation files.

        Class ids are consecutive (1 .. number of categories, in the order of the
        first file's categories); `cats_to_classes`, `classes_to_cats`,
        `cats_to_names` and `classes_to_names` map between them and COCO's ids.
        Boxes ``[x, y, w, h]`` become corners ``(x, y, x + w, y + h)`` (floats).

        Args:
            images_dirs, annotations_filenames: parallel lists.
            ground_truth_available: read the annotations (test sets have none).
            include_classes: 'all' or a list of ORIGINAL COCO category ids to keep.
            ret: return ``(images, filenames, labels, image_ids)``.

        Raises:
            DatasetError: for a missing or malformed file, or an annotation that
                names an unknown category or image.
        """
        self.filenames, self.image_ids, self.labels, self.eval_neutral = [], [], [], None
        for k, (images_dir, path) in enumerate(zip(images_dirs, annotations_filenames)):
            try:
                with open(path, encoding="utf8") as f:
                    annotations = json.load(f)
                images = annotations["images"]
                categories = annotations["categories"] if k == 0 else None
            except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
                raise DatasetError(f"Cannot read COCO annotations from {path}: {error!r}") from None
            if k == 0:
                self.cats_to_names = {cat["id"]: cat["name"] for cat in categories}
                self.classes_to_names = ["background"] + [cat["name"] for cat in categories]
                self.cats_to_classes = {cat["id"]: i + 1 for i, cat in enumerate(categories)}
                self.classes_to_cats = {i + 1: cat["id"] for i, cat in enumerate(categories)}
            by_image = defaultdict(list)
            if ground_truth_available:
                known_images = {image["id"] for image in images}
                for i, ann in enumerate(annotations.get("annotations", [])):
                    try:
                        category, image_id, (x, y, w, h) = ann["category_id"], ann["image_id"], ann["bbox"]
                    except (KeyError, TypeError, ValueError):
                        raise DatasetError(f"{path}, annotation {i}: expected 'category_id', 'image_id' and a 4-value 'bbox'.") from None
                    if category not in self.cats_to_classes:
                        raise DatasetError(f"{path}, annotation {i}: unknown category id {category}.")
                    if image_id not in known_images:
                        raise DatasetError(f"{path}, annotation {i}: unknown image id {image_id}.")
                    if include_classes == "all" or category in include_classes:
                        by_image[image_id].append(self._box_row(self.cats_to_classes[category], x, y, x + w, y + h))
            for image in tqdm(images, desc=f"Processing {os.path.basename(path)}", disable=not (verbose and self.verbose)):
                self.filenames.append(os.path.join(images_dir, image["file_name"]))
                self.image_ids.append(image["id"])
                if ground_truth_available:
                    self.labels.append(_labels_array(by_image[image["id"]]))
        if not ground_truth_available:
            self.labels = None
        return self._finish_parse(ret, self.images, self.filenames, self.labels, self.image_ids)

    # ------------------------------------------------------------------ HDF5

    def create_hdf5_dataset(self, file_path="dataset.h5", resize=False, variable_image_size=True, verbose=True):
        """Writes the data set to one HDF5 file (images as flat uint8 arrays).

        Images get 3 channels (grayscale repeated, alpha dropped). With ``resize=(h, w)``
        images are resized and their labels scaled with them (the original left the
        labels as they were). Labels are stored as float32 (the original: int32). The
        file is written under a temporary name and renamed when complete, so an
        interrupted run leaves nothing that loads as a data set. Afterwards this
        generator reads from the file.
        """
        from data_generator.object_detection_2d_geometric_ops import Resize
        from data_generator.object_detection_2d_photometric_ops import ConvertTo3Channels

        resize_op = Resize(*resize, labels_format=self.labels_format) if resize else None
        directory = os.path.dirname(os.path.abspath(file_path))
        fd, tmp = tempfile.mkstemp(suffix=".h5.part", dir=directory)
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as f:
                n = self.dataset_size
                f.attrs["has_labels"] = self.labels is not None
                f.attrs["has_image_ids"] = self.image_ids is not None
                f.attrs["has_eval_neutral"] = self.eval_neutral is not None
                f.attrs["variable_image_size"] = bool(variable_image_size and not resize)
                f.attrs["labels_output_format"] = json.dumps(list(self.labels_output_format))
                images = f.create_dataset("images", shape=(n,), dtype=h5py.vlen_dtype(np.uint8))
                shapes = f.create_dataset("image_shapes", shape=(n, 3), dtype=np.int32)
                if self.labels is not None:
                    labels = f.create_dataset("labels", shape=(n,), dtype=h5py.vlen_dtype(np.float32))
                    label_shapes = f.create_dataset("label_shapes", shape=(n, 2), dtype=np.int32)
                if self.image_ids is not None:
                    ids = f.create_dataset("image_ids", shape=(n,), dtype=h5py.string_dtype())
                if self.eval_neutral is not None:
                    neutral = f.create_dataset("eval_neutral", shape=(n,), dtype=h5py.vlen_dtype(np.bool_))
                for i in tqdm(range(n), desc="Creating HDF5 dataset", disable=not (verbose and self.verbose)):
                    image = ConvertTo3Channels()(self._image(i))
                    item_labels = None if self.labels is None else self.labels[i]
                    if resize_op is not None:
                        image, item_labels = resize_op(image, item_labels) if item_labels is not None else (resize_op(image), None)
                    images[i] = image.reshape(-1)
                    shapes[i] = image.shape
                    if self.labels is not None:
                        labels[i] = np.asarray(item_labels, dtype=np.float32).reshape(-1)
                        label_shapes[i] = np.asarray(item_labels).reshape(-1, len(self.labels_output_format)).shape
                    if self.image_ids is not None:
                        ids[i] = str(self.image_ids[i])
                    if self.eval_neutral is not None:
                        neutral[i] = np.asarray(self.eval_neutral[i], dtype=bool).reshape(-1)
                f.attrs["complete"] = True
            os.replace(tmp, file_path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        self.hdf5_dataset_path = file_path
        self.load_hdf5_dataset(verbose=False)

    def load_hdf5_dataset(self, verbose=True):
        """Opens `hdf5_dataset_path` read-only and loads its labels, ids and flags.

        Raises:
            DatasetError: if the file is missing, unreadable, or not a complete data set.
        """
        path = self.hdf5_dataset_path
        if not os.path.isfile(path):
            raise DatasetError(f"HDF5 data set not found: {path}")
        try:
            f = h5py.File(path, "r")
        except OSError as error:
            raise DatasetError(f"Cannot open HDF5 data set {path}: {error}") from None
        if "images" not in f or "image_shapes" not in f or not f.attrs.get("complete", True):
            f.close()
            raise DatasetError(f"{path} is not a complete data set written by create_hdf5_dataset.")
        self.hdf5_dataset = f
        self.dataset_size = len(f["images"])
        self.dataset_indices = np.arange(self.dataset_size, dtype=np.int32)
        self.image_shapes = f["image_shapes"][()]
        if f.attrs.get("has_labels", False):
            shapes = f["label_shapes"][()]
            flat = f["labels"]
            self.labels = [np.asarray(flat[i], dtype=np.float64).reshape(shapes[i]) for i in
                           tqdm(range(self.dataset_size), desc="Loading labels", disable=not (verbose and self.verbose))]
        if f.attrs.get("has_image_ids", False):
            self.image_ids = [i.decode("utf8") if isinstance(i, bytes) else str(i) for i in f["image_ids"][()]]
        if f.attrs.get("has_eval_neutral", False):
            self.eval_neutral = [np.asarray(v, dtype=bool) for v in f["eval_neutral"][()]]
        if self.load_images_into_memory:
            self.images = [self._image(i) for i in range(self.dataset_size)]

    # ------------------------------------------------------------------ batches

    def _image(self, i):
        """Image `i` as a uint8 array, from memory, the HDF5 file or its file."""
        if self.images is not None:
            return self.images[i]
        if self.hdf5_dataset is not None:
            return np.asarray(self.hdf5_dataset["images"][i]).reshape(self.image_shapes[i])
        return load_image(self.filenames[i])

    def _item_name(self, i):
        if self.filenames is not None:
            return self.filenames[i]
        return f"{self.hdf5_dataset_path}[{i}]" if self.hdf5_dataset_path else f"item {i}"

    def _check_boxes_inside(self, i, labels, height, width, handling):
        """Boxes of item `i` that reach outside its image: an error, a warning, or a
        warning and their removal, as `handling` says ('error', 'warn', 'remove')."""
        f = self.labels_format
        outside = (labels[:, f["xmin"]] < 0) | (labels[:, f["ymin"]] < 0) | (labels[:, f["xmax"]] > width) | (labels[:, f["ymax"]] > height)
        if not outside.any():
            return labels
        message = f"{self._item_name(i)}: box(es) outside the {width}x{height} image: {labels[outside].tolist()}"
        if handling == "error":
            raise DatasetError(message)
        if handling == "warn":
            warnings.warn(message, stacklevel=4)
            return labels
        warnings.warn(message + " (removed)", stacklevel=4)
        return labels[~outside]

    def make_batch(self, indices, transformations=(), label_encoder=None, returns=("processed_images", "encoded_labels"),
                   keep_images_without_gt=False, degenerate_box_handling="remove"):
        """One batch of the items `indices`, as `generate` yields it (a tuple).

        Raises:
            DegenerateBatchError: if no item is left, or the images differ in size.
        """
        returns = set(returns)
        has_labels = self.labels is not None
        for transform in transformations:
            if has_labels and hasattr(transform, "labels_format"):
                transform.labels_format = self.labels_format
        degenerate_filter = BoxFilter(check_overlap=False, check_min_area=False, check_degenerate=True, labels_format=self.labels_format)
        f = self.labels_format
        batch = defaultdict(list)
        for i in indices:
            image = self._image(i)
            labels = np.array(self.labels[i], dtype=np.float64) if has_labels else None
            if has_labels and len(labels):
                labels = self._check_boxes_inside(i, labels, image.shape[0], image.shape[1], degenerate_box_handling)
            if has_labels and len(labels) == 0 and not keep_images_without_gt:
                continue
            if "original_images" in returns:
                batch["original_images"].append(image)
            if "original_labels" in returns and has_labels:
                batch["original_labels"].append(labels.copy())
            inverters = []
            for transform in transformations:
                if "inverse_transform" in returns and accepts_inverter(transform):
                    out = transform(image, labels, return_inverter=True)
                    inverters.append(out[-1])
                    out = out[:-1] if has_labels else out[0]
                else:
                    out = transform(image, labels) if has_labels else transform(image)
                image, labels = out if has_labels else (out, None)
                if image is None:
                    break
            if image is None:  # a transformation gave up on this item
                if "original_images" in returns:
                    batch["original_images"].pop()
                if "original_labels" in returns and has_labels:
                    batch["original_labels"].pop()
                continue
            if has_labels and len(labels):
                bad = (labels[:, f["xmax"]] <= labels[:, f["xmin"]]) | (labels[:, f["ymax"]] <= labels[:, f["ymin"]])
                if bad.any():
                    message = f"{self._item_name(i)}: degenerate box(es) after the transformations: {labels[bad].tolist()}"
                    if degenerate_box_handling == "error":
                        raise DegenerateBoxError(message)
                    if degenerate_box_handling == "warn":
                        warnings.warn(message, stacklevel=3)
                    else:
                        warnings.warn(message + " (removed)", stacklevel=3)
                        labels = degenerate_filter(labels)
                if len(labels) == 0 and not keep_images_without_gt:
                    if "original_images" in returns:
                        batch["original_images"].pop()
                    if "original_labels" in returns:
                        batch["original_labels"].pop()
                    continue
            batch["processed_images"].append(image)
            if has_labels:
                batch["processed_labels"].append(labels)
            batch["filenames"].append(self.filenames[i] if self.filenames is not None else None)
            batch["image_ids"].append(self.image_ids[i] if self.image_ids is not None else None)
            batch["evaluation-neutral"].append(self.eval_neutral[i] if self.eval_neutral is not None else None)
            batch["inverse_transform"].append(inverters[::-1])
        if not batch["processed_images"]:
            raise DegenerateBatchError(
                f"No image of the batch {list(indices)[:8]}... is left: each had no boxes or lost them in the transformations. "
                "Pass keep_images_without_gt=True to keep such images."
            )
        shapes = {image.shape for image in batch["processed_images"]}
        if len(shapes) > 1 and "processed_images" in returns:
            raise DegenerateBatchError(
                f"The images of a batch must have one size; got {sorted(shapes)}. Add a Resize (or an augmentation chain that "
                "ends in one) to `transformations`."
            )
        out = {"processed_images": np.stack(batch["processed_images"]) if "processed_images" in returns else None}
        if "encoded_labels" in returns or "matched_anchors" in returns:
            if label_encoder is None or not has_labels:
                raise ValueError("`returns` asks for 'encoded_labels' but there is no `label_encoder` (or no labels).")
            if "matched_anchors" in returns and isinstance(label_encoder, SSDInputEncoder):
                out["encoded_labels"], out["matched_anchors"] = label_encoder(batch["processed_labels"], diagnostics=True)
            else:
                out["encoded_labels"] = label_encoder(batch["processed_labels"])
        for key in ("processed_labels", "filenames", "image_ids", "evaluation-neutral", "inverse_transform", "original_images",
                    "original_labels"):
            out[key] = batch[key]
        return tuple(out[key] for key in RETURN_ORDER if key in returns)

    def usable_indices(self, keep_images_without_gt=False):
        """The items batches are made of: all, or only those with boxes (images without
        boxes are skipped up front, so that no batch consists of them alone)."""
        if self.labels is None or keep_images_without_gt:
            return np.arange(self.dataset_size)
        return np.array([i for i, labels in enumerate(self.labels) if len(labels)], dtype=np.int64)

    def _check_generate_args(self, returns, degenerate_box_handling, keep_images_without_gt=True):
        if self.dataset_size == 0:
            raise DatasetError("Cannot generate batches from an empty data set.")
        if len(self.usable_indices(keep_images_without_gt)) == 0:
            raise DatasetError("No image of the data set has a box; pass keep_images_without_gt=True to use them anyway.")
        unknown = set(returns) - set(RETURN_ORDER)
        if unknown:
            raise ValueError(f"Unknown `returns` entries {sorted(unknown)}; expected some of {list(RETURN_ORDER)}.")
        if degenerate_box_handling not in DEGENERATE_BOX_HANDLING:
            raise ValueError(f"Expected `degenerate_box_handling` to be one of {set(DEGENERATE_BOX_HANDLING)}. "
                             f"Received: degenerate_box_handling={degenerate_box_handling!r}")

    def generate(self, batch_size=32, shuffle=True, transformations=(), label_encoder=None, returns=("processed_images", "encoded_labels"),
                 keep_images_without_gt=False, degenerate_box_handling="remove"):
        """An infinite generator of batches, one pass over the data after another.

        Args:
            batch_size: items per batch (the last batch of a pass may be smaller;
                images without boxes are left out unless `keep_images_without_gt`,
                and so are images that lose all boxes in the transformations).
            shuffle: a new random order for each pass.
            transformations: callables ``t(image, labels)`` applied in order.
            label_encoder: e.g. an `SSDInputEncoder`, applied to the batch's labels.
            returns: which outputs to yield, in the fixed order of `RETURN_ORDER`:
                'processed_images', 'encoded_labels', 'matched_anchors',
                'processed_labels', 'filenames', 'image_ids', 'evaluation-neutral',
                'inverse_transform', 'original_images', 'original_labels'.
            keep_images_without_gt: keep images that have (or are left with) no box.
            degenerate_box_handling: what to do with boxes that reach outside their
                image (checked on loading) and with degenerate boxes (xmax <= xmin or
                ymax <= ymin, checked after the transformations): 'remove' them with a
                warning, 'warn' and keep them, or raise an 'error'. Each message
                names the file and the boxes.

        Yields:
            tuples in the order above (the original yielded lists).

        Raises:
            DatasetError: for an empty data set; ValueError for bad arguments.
        """
        self._check_generate_args(returns, degenerate_box_handling, keep_images_without_gt)
        order = self.usable_indices(keep_images_without_gt)
        while True:
            if shuffle:
                np.random.shuffle(order)
            for start in range(0, len(order), batch_size):
                yield self.make_batch(order[start:start + batch_size], transformations, label_encoder, returns, keep_images_without_gt,
                                      degenerate_box_handling)

    def keras_dataset(self, batch_size=32, shuffle=True, transformations=(), label_encoder=None,
                      returns=("processed_images", "encoded_labels"), keep_images_without_gt=False, degenerate_box_handling="remove",
                      workers=2, use_multiprocessing=False, max_queue_size=10, seed=None, steps_per_epoch=None, start_method=None):
        """The batches of `generate` as a `keras.utils.PyDataset` for ``model.fit``.

        ``len(dataset)`` is the number of batches per epoch (images without boxes are
        left out unless `keep_images_without_gt`), so `fit` needs no
        `steps_per_epoch`; each pass over the data has its own order. `workers` threads
        build batches in parallel (OpenCV releases the GIL).

        With ``use_multiprocessing=True`` (the fastest: 2 processes build about 1.7x the
        batches of one thread on 2 cores), `workers` forked processes build batches
        ahead, up to ``min(max_queue_size, 2 * workers + 2)``, also across the end of an
        epoch, and return their arrays through shared memory instead of a pipe. The
        processes see the data set as it was at the first batch; `close()` stops them (so does
        garbage collection). `start_method` says how they start: 'fork', or
        'forkserver' (workers forked from a clean server process, for backends that run
        threads or hold a GPU context); by default 'forkserver' under JAX (and PyTorch
        with CUDA initialised), 'fork' otherwise (see `data_generator.batch_workers`).
        Where ``fork`` is missing (Windows, macOS), Keras' own process pool runs
        instead.

        `steps_per_epoch` (like the original's ``fit_generator(steps_per_epoch=1000)``)
        sets ``len(dataset)``; the batches then run on over the data across epochs
        (each pass in a new order) instead of restarting every epoch. Without it Keras
        stops an epoch early, with an "input ran out of data" warning, when
        ``model.fit(steps_per_epoch=...)`` asks for more batches than one pass has.

        Example:
        >>> train = train_dataset.keras_dataset(32, transformations=[SSDDataAugmentation()], label_encoder=encoder)
        >>> model.fit(train, epochs=10)
        """
        self._check_generate_args(returns, degenerate_box_handling, keep_images_without_gt)
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"Expected `steps_per_epoch` to be None or positive. Received: steps_per_epoch={steps_per_epoch}")
        return _dataset_class()(self, batch_size, shuffle, list(transformations), label_encoder, tuple(returns), keep_images_without_gt,
                                    degenerate_box_handling, seed, steps_per_epoch, start_method, workers=workers,
                                    use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)


def _flag(obj, tag):
    element = obj.find(tag, recursive=False)
    try:
        return element is not None and int(float(element.text)) != 0
    except ValueError:
        return False


def _reseed(transform, seed):
    """Gives every random generator inside `transform` a new stream derived from `seed`
    (an int or a tuple of ints)."""
    seed = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    seen = set()
    stack = [transform]
    generators = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.random.Generator):
            generators.append(obj)
            continue
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.extend(vars(obj).values())
    for k, generator in enumerate(sorted(generators, key=id)):
        generator.bit_generator.state = np.random.default_rng(seed + [k]).bit_generator.state


class _DatasetMethods:
    """`DataGenerator` batches for Keras 3 (see `DataGenerator.keras_dataset`)."""

    def __init__(self, data_generator, batch_size, shuffle, transformations, label_encoder, returns, keep_images_without_gt,
                 degenerate_box_handling, seed=None, steps_per_epoch=None, start_method=None, **kwargs):
        self.steps_per_epoch = steps_per_epoch
        self.start_method = start_method
        self.epoch = 0
        self.first_batch = 0  # a resumed epoch starts here (see ssd_keras_cli.checkpointing)
        self.worker_error = None  # the WorkerError of a batch worker process that died
        self.data_generator = data_generator
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transformations = transformations
        self.label_encoder = label_encoder
        self.returns = returns
        self.keep_images_without_gt = keep_images_without_gt
        self.degenerate_box_handling = degenerate_box_handling
        self.rng = np.random.default_rng(seed)
        self._pass_seed = int(self.rng.integers(2**63))
        self._pass_cache = (None, None)
        self.indices = data_generator.usable_indices(keep_images_without_gt)
        self._process_workers = 0
        self._pool = None
        self._pool_lock = threading.Lock()
        if kwargs.get("use_multiprocessing") and fork_available():
            # Our own forked workers with shared-memory slots; Keras sees a plain, serial PyDataset.
            self._process_workers = max(1, kwargs.get("workers", 1))
            self._prefetch_depth = max(self._process_workers, min(kwargs.get("max_queue_size", 10), 2 * self._process_workers + 2))
            kwargs.update(workers=1, use_multiprocessing=False)
        elif kwargs.get("workers", 1) > 1:
            # The workers already use the cores; OpenCV's own thread pool would compete with them.
            cv2.setNumThreads(1)
        super().__init__(**kwargs)

    def __len__(self):
        return self.epoch_length - self.first_batch

    @property
    def epoch_length(self):
        """Batches in a whole epoch (`len` counts those left when `first_batch` is set)."""
        return self.steps_per_epoch or self._batches_per_pass()

    def _batches_per_pass(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def _pass_order(self, n):
        """The image order of pass `n` over the data."""
        cached_pass, order = self._pass_cache
        if cached_pass != n:
            order = np.random.default_rng([self._pass_seed, n]).permutation(self.indices) if self.shuffle else self.indices
            self._pass_cache = (n, order)
        return order

    @property
    def order(self):
        """The image order of the current epoch's pass over the data."""
        return self._pass_order(divmod(self.epoch * self.epoch_length, self._batches_per_pass())[0])

    def _batch_indices(self, step):
        """The image indices of batch number `step`, counted from the first batch of epoch 0.

        Pass `n` over the data has its own order (a permutation seeded by the data set's
        seed and `n`), so every batch is known in advance and the worker processes can
        build batches of the next epoch before it begins.
        """
        n_pass, k = divmod(step, self._batches_per_pass())
        return self._pass_order(n_pass)[k * self.batch_size:(k + 1) * self.batch_size]

    def _build(self, task):
        """Batch `task` = (step, indices). Each batch gets its own copy of the
        transformations, seeded by the data set's seed and `step`: a batch does not depend
        on which thread or process builds it, nor on the batches built before it (so a
        resumed run gets exactly the batches of an uninterrupted one)."""
        step, indices = task
        transformations = copy.deepcopy(self.transformations)
        _reseed(transformations, (self._pass_seed, step))
        return self.data_generator.make_batch(indices, transformations, self.label_encoder, self.returns, self.keep_images_without_gt,
                                              self.degenerate_box_handling)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} out of range for a data set of {len(self)} batches per epoch.")
        step = self.epoch * self.epoch_length + self.first_batch + index
        if self._process_workers:
            with self._pool_lock:
                try:
                    return self._from_workers(step)
                except WorkerError as error:
                    # Kept for the caller: Keras may hand it on wrapped in a backend's error.
                    self.worker_error = error
                    raise
        return self._build((step, self._batch_indices(step)))

    def _from_workers(self, step):
        if self._pool is None:
            batch = self._build((step, self._batch_indices(step)))  # sizes the shared-memory slots
            self._pool = BatchWorkers(self._build, self._process_workers, shared_bytes(batch), self._prefetch_depth + 4,
                                      start_method=self.start_method)
            self._prefetch(step + 1)
            return batch
        pool = self._pool
        if not pool.pending(step):
            # Not the batch the workers expected (a jump): drop what they were building ahead.
            pool.discard(k for k in pool.pending_keys if k < step or k > step + self._prefetch_depth)
            pool.submit(step, (step, self._batch_indices(step)))
        self._prefetch(step + 1)
        return pool.get(step)

    def _prefetch(self, start):
        pool = self._pool
        for step in range(start, start + self._prefetch_depth):
            if not pool.free_slots:
                break
            if not pool.pending(step):
                pool.submit(step, (step, self._batch_indices(step)))

    def close(self):
        """Stops the worker processes (``use_multiprocessing=True``); they start again when needed."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def on_epoch_end(self):
        self.epoch += 1

    def __getstate__(self):  # Keras' own process pool (without fork) pickles the data set
        state = dict(self.__dict__)
        state.update(_pool=None, _pool_lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pool_lock = threading.Lock()


_DATASET_CLASS = []


def _dataset_class():
    """`DataGeneratorDataset`, a `keras.utils.PyDataset`; built on first use so that the
    data pipeline does not import Keras (and TensorFlow) until it is needed."""
    if not _DATASET_CLASS:
        import keras

        _DATASET_CLASS.append(type("DataGeneratorDataset", (_DatasetMethods, keras.utils.PyDataset), {"__module__": __name__}))
    return _DATASET_CLASS[0]


def __getattr__(name):
    if name == "DataGeneratorDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
