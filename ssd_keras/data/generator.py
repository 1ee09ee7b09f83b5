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
import os
import pickle
import warnings
from collections import defaultdict

import cv2
import numpy as np
from tqdm import tqdm

from ssd_keras.data.annotations import CSV_COLUMNS, labels_array, read_coco, read_csv, read_voc  # noqa: F401
from ssd_keras.data.hdf5_io import read_dataset, write_dataset
from ssd_keras.data.transforms.base import accepts_inverter
from ssd_keras.data.transforms.validation import BoxFilter
from ssd_keras.encoding.input_encoder import SSDInputEncoder
from ssd_keras.errors import DatasetError, DegenerateBatchError, DegenerateBoxError

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
# The order in which `generate` yields the outputs that `returns` asks for.
RETURN_ORDER = (
    "processed_images",
    "encoded_labels",
    "matched_anchors",
    "processed_labels",
    "filenames",
    "image_ids",
    "evaluation-neutral",
    "inverse_transform",
    "original_images",
    "original_labels",
)
DEGENERATE_BOX_HANDLING = ("remove", "warn", "error")


def degenerate_boxes(labels, labels_format):
    """Mask of the rows of `labels` (a 2-D array) whose box has ``xmax <= xmin`` or ``ymax <= ymin``."""
    f = labels_format
    return (labels[:, f["xmax"]] <= labels[:, f["xmin"]]) | (labels[:, f["ymax"]] <= labels[:, f["ymin"]])


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
        image = (
            np.round(image / (np.iinfo(image.dtype).max / 255.0)).astype(np.uint8)
            if image.dtype.kind == "u"
            else image.astype(np.uint8)
        )
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def rgb_image(image):
    """An image as a uint8 RGB array of 3 channels: a file path read with `load_image`, or
    an array (grayscale, RGB or RGBA) converted as `ConvertTo3Channels` does.

    Raises:
        DatasetError: naming a file that is missing or cannot be decoded.
    """
    from ssd_keras.data.transforms.photometric import ConvertTo3Channels

    array = load_image(os.fspath(image)) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
    return ConvertTo3Channels()(array)


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
    raise ValueError(
        f"Expected `{name}` to be a list, a tuple or the path of a pickle file. Received: {type(value).__name__}"
    )


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

    def __init__(
        self,
        load_images_into_memory=False,
        hdf5_dataset_path=None,
        filenames=None,
        filenames_type="text",
        images_dir=None,
        labels=None,
        image_ids=None,
        eval_neutral=None,
        labels_output_format=("class_id", "xmin", "ymin", "xmax", "ymax"),
        verbose=True,
    ):
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
                with open(filenames, encoding="utf8") as f:  # text mode (the original read bytes)
                    names = [line.strip() for line in f if line.strip()]
            except OSError as error:
                raise DatasetError(f"Cannot read `filenames` from {filenames}: {error}") from None
            self.filenames = [os.path.join(images_dir, name) if images_dir else name for name in names]
        elif isinstance(filenames, str) and filenames_type != "pickle":
            raise ValueError(
                f"Expected `filenames_type` to be one of {{'text', 'pickle'}}. Received: "
                f"filenames_type={filenames_type!r}"
            )
        else:
            self.filenames = _load_list(filenames, "filenames")
        self.labels = _load_list(labels, "labels")
        if self.labels is not None:
            self.labels = [labels_array(rows, len(self.labels_output_format)) for rows in self.labels]
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
        """The number of images in the data set (the original's accessor)."""
        return self.dataset_size

    def save_dataset(
        self, filenames_path="filenames.pkl", labels_path=None, image_ids_path=None, eval_neutral_path=None
    ):
        """Pickles the lists (the ones whose path is given)."""
        for path, value in (
            (filenames_path, self.filenames),
            (labels_path, self.labels),
            (image_ids_path, self.image_ids),
            (eval_neutral_path, self.eval_neutral),
        ):
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

    def parse_csv(
        self,
        images_dir,
        labels_filename,
        input_format,
        include_classes="all",
        random_sample=False,
        ret=False,
        verbose=True,
    ):
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
        boxes = read_csv(labels_filename, input_format, include_classes, self._box_row)
        names = sorted(boxes)
        if random_sample:
            names = [name for name in names if np.random.uniform(0, 1) < random_sample]
        self.filenames = [os.path.join(images_dir, name) for name in names]
        self.labels = [labels_array(boxes[name], len(self.labels_output_format)) for name in names]
        self.image_ids = [name.split(".")[0] for name in names]
        self.eval_neutral = None
        return self._finish_parse(ret, self.images, self.filenames, self.labels, self.image_ids)

    def parse_xml(
        self,
        images_dirs,
        image_set_filenames,
        annotations_dirs=(),
        classes=VOC_CLASSES,
        include_classes="all",
        exclude_truncated=False,
        exclude_difficult=False,
        ret=False,
        verbose=True,
    ):
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
        self.classes = list(classes)
        self.filenames, self.image_ids, self.labels, self.eval_neutral = read_voc(
            images_dirs,
            image_set_filenames,
            annotations_dirs,
            self.classes,
            include_classes,
            exclude_truncated,
            exclude_difficult,
            self._box_row,
            len(self.labels_output_format),
            verbose and self.verbose,
        )
        return self._finish_parse(ret, self.images, self.filenames, self.labels, self.image_ids, self.eval_neutral)

    def parse_json(
        self,
        images_dirs,
        annotations_filenames,
        ground_truth_available=False,
        include_classes="all",
        ret=False,
        verbose=True,
        exclude_crowd=False,
    ):
        """Reads MS COCO annotation files.

        Class ids are consecutive (1 .. number of categories, in the order of the
        first file's categories); `cats_to_classes`, `classes_to_cats`,
        `cats_to_names` and `classes_to_names` map between them and COCO's ids.
        Boxes ``[x, y, w, h]`` become corners ``(x, y, x + w, y + h)`` (floats).
        `eval_neutral` flags the crowd boxes (``"iscrowd": 1``), as `parse_xml` flags
        VOC's difficult ones: the `Evaluator` neither counts them nor penalises the
        detections that match them (the original read them as ordinary boxes).

        Args:
            images_dirs, annotations_filenames: parallel lists.
            ground_truth_available: read the annotations (test sets have none).
            include_classes: 'all' or a list of ORIGINAL COCO category ids to keep.
            ret: return ``(images, filenames, labels, image_ids)``.
            exclude_crowd: leave out the crowd boxes (training sets, as torchvision's
                detection references do).

        Raises:
            DatasetError: for a missing or malformed file, or an annotation that
                names an unknown category or image.
        """
        self.filenames, self.image_ids, self.labels, self.eval_neutral, maps = read_coco(
            images_dirs,
            annotations_filenames,
            ground_truth_available,
            include_classes,
            self._box_row,
            len(self.labels_output_format),
            verbose and self.verbose,
            exclude_crowd,
        )
        for name, value in maps.items():  # cats_to_names, classes_to_names, cats_to_classes, classes_to_cats
            setattr(self, name, value)
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
        write_dataset(
            file_path,
            self.dataset_size,
            self._image,
            self.labels,
            self.image_ids,
            self.eval_neutral,
            self.labels_format,
            self.labels_output_format,
            resize,
            variable_image_size,
            verbose and self.verbose,
        )
        self.hdf5_dataset_path = file_path
        self.load_hdf5_dataset(verbose=False)

    def load_hdf5_dataset(self, verbose=True):
        """Opens `hdf5_dataset_path` read-only and loads its labels, ids and flags.

        Raises:
            DatasetError: if the file is missing, unreadable, or not a complete data set.
        """
        stored = read_dataset(self.hdf5_dataset_path, verbose and self.verbose)
        self.hdf5_dataset = stored["file"]
        self.dataset_size = stored["size"]
        self.dataset_indices = np.arange(self.dataset_size, dtype=np.int32)
        self.image_shapes = stored["image_shapes"]
        for name in ("labels", "image_ids", "eval_neutral"):
            if stored[name] is not None:
                setattr(self, name, stored[name])
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
        outside = (
            (labels[:, f["xmin"]] < 0)
            | (labels[:, f["ymin"]] < 0)
            | (labels[:, f["xmax"]] > width)
            | (labels[:, f["ymax"]] > height)
        )
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

    def _prepared(self, transformations):
        """`transformations` set up for this data set's label columns.

        A transformation whose `labels_format` differs gets a copy with the data set's,
        set through its setter (which chains forward to their parts): the caller's
        objects are never written to. Those that match are used as they are.
        """
        prepared = []
        for transform in transformations:
            if (
                self.labels is not None
                and getattr(transform, "labels_format", self.labels_format) != self.labels_format
            ):
                transform = copy.deepcopy(transform)
                transform.labels_format = self.labels_format
            prepared.append(transform)
        return prepared

    def make_batch(
        self,
        indices,
        transformations=(),
        label_encoder=None,
        returns=("processed_images", "encoded_labels"),
        keep_images_without_gt=False,
        degenerate_box_handling="remove",
        reseed=None,
    ):
        """One batch of the items `indices`, as `generate` yields it (a tuple).

        `reseed`, if given, is called with each item's place in `indices` before its
        transformations run (`keras_dataset` gives each image a random stream of its own).

        Raises:
            DegenerateBatchError: if no item is left, or the images differ in size.
        """
        returns = set(returns)
        has_labels = self.labels is not None
        transformations = self._prepared(transformations)
        degenerate_filter = BoxFilter(
            check_overlap=False, check_min_area=False, check_degenerate=True, labels_format=self.labels_format
        )
        batch = defaultdict(list)
        for k, i in enumerate(indices):
            if reseed is not None:
                reseed(k)
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
                bad = degenerate_boxes(labels, self.labels_format)
                if bad.any():
                    message = (
                        f"{self._item_name(i)}: degenerate box(es) after the transformations: {labels[bad].tolist()}"
                    )
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
                f"No image of the batch {list(indices)[:8]}... is left: each had no boxes or lost them in the "
                "transformations. "
                "Pass keep_images_without_gt=True to keep such images."
            )
        shapes = {image.shape for image in batch["processed_images"]}
        if len(shapes) > 1 and "processed_images" in returns:
            raise DegenerateBatchError(
                f"The images of a batch must have one size; got {sorted(shapes)}. Add a Resize (or an augmentation "
                "chain that "
                "ends in one) to `transformations`."
            )
        out = {"processed_images": np.stack(batch["processed_images"]) if "processed_images" in returns else None}
        if "encoded_labels" in returns or "matched_anchors" in returns:
            if label_encoder is None or not has_labels:
                raise ValueError("`returns` asks for 'encoded_labels' but there is no `label_encoder` (or no labels).")
            if "matched_anchors" in returns and isinstance(label_encoder, SSDInputEncoder):
                out["encoded_labels"], out["matched_anchors"] = label_encoder(
                    batch["processed_labels"], diagnostics=True
                )
            else:
                out["encoded_labels"] = label_encoder(batch["processed_labels"])
        for key in (
            "processed_labels",
            "filenames",
            "image_ids",
            "evaluation-neutral",
            "inverse_transform",
            "original_images",
            "original_labels",
        ):
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
            raise DatasetError(
                "No image of the data set has a box; pass keep_images_without_gt=True to use them anyway."
            )
        unknown = set(returns) - set(RETURN_ORDER)
        if unknown:
            raise ValueError(f"Unknown `returns` entries {sorted(unknown)}; expected some of {list(RETURN_ORDER)}.")
        if degenerate_box_handling not in DEGENERATE_BOX_HANDLING:
            raise ValueError(
                f"Expected `degenerate_box_handling` to be one of {set(DEGENERATE_BOX_HANDLING)}. "
                f"Received: degenerate_box_handling={degenerate_box_handling!r}"
            )

    def generate(
        self,
        batch_size=32,
        shuffle=True,
        transformations=(),
        label_encoder=None,
        returns=("processed_images", "encoded_labels"),
        keep_images_without_gt=False,
        degenerate_box_handling="remove",
    ):
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
        transformations = self._prepared(transformations)  # once, not per batch
        order = self.usable_indices(keep_images_without_gt)
        while True:
            if shuffle:
                np.random.shuffle(order)
            for start in range(0, len(order), batch_size):
                yield self.make_batch(
                    order[start : start + batch_size],
                    transformations,
                    label_encoder,
                    returns,
                    keep_images_without_gt,
                    degenerate_box_handling,
                )

    def keras_dataset(
        self,
        batch_size=32,
        shuffle=True,
        transformations=(),
        label_encoder=None,
        returns=("processed_images", "encoded_labels"),
        keep_images_without_gt=False,
        degenerate_box_handling="remove",
        workers=2,
        use_multiprocessing=False,
        max_queue_size=10,
        seed=None,
        steps_per_epoch=None,
        start_method=None,
        full_batches=False,
        shard=None,
    ):
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
        with CUDA initialised), 'fork' otherwise (see `ssd_keras.data.batch_workers`).
        Where ``fork`` is missing (Windows, macOS), Keras' own process pool runs
        instead.

        `steps_per_epoch` (like the original's ``fit_generator(steps_per_epoch=1000)``)
        sets ``len(dataset)``; the batches then run on over the data across epochs
        (each pass in a new order) instead of restarting every epoch. Without it Keras
        stops an epoch early, with an "input ran out of data" warning, when
        ``model.fit(steps_per_epoch=...)`` asks for more batches than one pass has.

        For several devices: `full_batches` makes every batch `batch_size` images (a
        pass's last, partial batch is left out; an image whose boxes the transformations
        removed stays, as background); `shard` ``(i, n)`` makes this data set build only
        the i-th of n equal parts of every batch (one process's share of the global batch).
        Each image's augmentation is seeded by its batch and its place in the batch, so the
        parts are those of the whole batch.

        Examples:
            >>> train = train_dataset.keras_dataset(32, transformations=[SSDDataAugmentation()],  # doctest: +SKIP
            ...                                     label_encoder=encoder)
            >>> model.fit(train, epochs=10)  # doctest: +SKIP
        """
        self._check_generate_args(returns, degenerate_box_handling, keep_images_without_gt)
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(
                f"Expected `steps_per_epoch` to be None or positive. Received: steps_per_epoch={steps_per_epoch}"
            )
        from ssd_keras.data.keras_adapter import DataGeneratorDataset

        return DataGeneratorDataset(
            self,
            batch_size,
            shuffle,
            self._prepared(transformations),
            label_encoder,
            tuple(returns),
            keep_images_without_gt,
            degenerate_box_handling,
            seed,
            steps_per_epoch,
            start_method,
            full_batches,
            shard,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            max_queue_size=max_queue_size,
        )


def __getattr__(name):
    # `DataGeneratorDataset` lives in `ssd_keras.data.keras_adapter`, which imports Keras;
    # loaded here on first use so that the data pipeline does not need Keras.
    if name == "DataGeneratorDataset":
        from ssd_keras.data.keras_adapter import DataGeneratorDataset

        return DataGeneratorDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
