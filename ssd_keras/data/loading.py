"""Data sets from their files: VOC XML, COCO JSON, CSV or HDF5 into a `DataGenerator`.

`DataSource` says where a data set is and how to read it; `load_dataset` reads one, after
`check_data_paths` has checked that what it names exists. `read_classes` reads class
names ('voc', a file, or a comma-separated list). The command line and the training
engine use these, and so can user code.
"""

import dataclasses
import os
import warnings

import numpy as np

from ssd_keras.data.annotations import CSV_COLUMNS
from ssd_keras.data.generator import VOC_CLASSES, DataGenerator, degenerate_boxes
from ssd_keras.errors import ArgumentError, ClassesError, DatasetError

FORMATS = ("voc", "coco", "csv", "hdf5")
CSV_FORMAT = CSV_COLUMNS  # the order of parse_csv's default `input_format`


@dataclasses.dataclass
class DataSource:
    """Where a data set is and how to read it: `load_dataset`'s arguments.

    Attributes:
        data_format: 'voc', 'coco', 'csv' or 'hdf5'.
        images_dirs: image directories (VOC: one per image set; COCO: one per annotation
            file; CSV: one).
        image_sets: VOC image-set files (one image id per line).
        annotations: VOC annotation directories, or COCO annotation files.
        labels_file: the CSV file.
        input_format: the CSV's first six columns.
        hdf5: a file written by `DataGenerator.create_hdf5_dataset`.
        exclude_difficult: leave out VOC boxes flagged difficult.
        exclude_crowd: leave out COCO's crowd boxes.
        in_memory: decode all images up front.

    Examples:
        >>> source = DataSource("csv", images_dirs=["udacity"], labels_file="udacity/labels_train.csv")
        >>> source.data_format, source.input_format[0]
        ('csv', 'image_name')
    """

    data_format: str
    images_dirs: tuple = ()
    image_sets: tuple = ()
    annotations: tuple = ()
    labels_file: str | None = None
    input_format: tuple = CSV_FORMAT
    hdf5: str | None = None
    exclude_difficult: bool = False
    exclude_crowd: bool = False
    in_memory: bool = False

    def check(self):
        """`check_data_paths` of this source: what it names exists (no file is read)."""
        check_data_paths(
            self.data_format, self.images_dirs, self.image_sets, self.annotations, self.labels_file, self.hdf5
        )

    def load(self, classes=None, verbose=True):
        """Reads the data set (`load_dataset`); `classes`: the VOC class names ('background'
        first; None for the 20 of Pascal VOC)."""
        return load_dataset(
            self.data_format,
            self.images_dirs,
            self.image_sets,
            self.annotations,
            self.labels_file,
            self.input_format,
            self.hdf5,
            classes=VOC_CLASSES if classes is None else classes,
            exclude_difficult=self.exclude_difficult,
            exclude_crowd=self.exclude_crowd,
            in_memory=self.in_memory,
            verbose=verbose,
        )


# What a class-names file is called, so that a missing one is not read as a one-class list.
_CLASS_FILE_ENDINGS = (".txt", ".names", ".csv", ".json", ".list")


def read_classes(spec):
    """Class names from 'voc', a text file (one name per line) or a comma-separated list.

    'background' is put first if the list does not start with it.

    Raises:
        ClassesError: for a class-names file that does not exist (a name with a path
            separator or ending in .txt, .names, .csv, .json or .list), an empty list or
            repeated names.
    """
    if spec is None or spec == "voc":
        names = list(VOC_CLASSES)
    elif os.path.isfile(spec):
        with open(spec, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    elif "," not in spec and (os.sep in spec or "/" in spec or spec.lower().endswith(_CLASS_FILE_ENDINGS)):
        raise ClassesError(f"Class names file not found: {spec}")
    else:
        names = [name.strip() for name in spec.split(",") if name.strip()]
    if names and names[0] != "background":
        names = ["background"] + names
    if len(names) < 2:
        raise ClassesError(f"Expected at least one class name in `classes`. Received: classes={spec!r}")
    if len(set(names)) != len(names):
        raise ClassesError(f"Expected distinct class names. Received: {names}")
    return names


def renumber_classes(dataset, class_names):
    """Gives the classes of a COCO data set (read with `parse_json`, which numbers the
    categories in the file's order) the ids of `class_names` ('background' first): the
    same names in another order. Renumbers the labels and the id maps in place.

    Raises:
        ValueError: if `class_names` are not the data set's classes.
    """
    found = list(dataset.classes_to_names)
    if sorted(found) != sorted(class_names):
        raise ValueError(f"Expected the classes {found[1:]} in some order. Received: {list(class_names)[1:]}")
    new_id = np.array([list(class_names).index(name) for name in found])  # the data's id -> the model's
    column = list(dataset.labels_output_format).index("class_id")
    for labels in dataset.labels or []:
        if len(labels):
            labels[:, column] = new_id[labels[:, column].astype(int)]
    dataset.classes_to_cats = {int(new_id[old]): cat for old, cat in dataset.classes_to_cats.items()}
    dataset.cats_to_classes = {cat: int(new_id[old]) for cat, old in dataset.cats_to_classes.items()}
    dataset.classes_to_names = list(class_names)


def check_coco_classes(classes, dataset, path, what="class_names", hint="", named=True):
    """Raises `ArgumentError` unless `classes` ('background' first) are the categories of the
    COCO file `path` read into `dataset`, in the file's order: `parse_json` numbers them 1 to
    n in that order, and class ids are all a model and the data have in common.

    Args:
        classes: the class names to check.
        dataset: a `DataGenerator` read with `parse_json`.
        path: the annotation file, for the message.
        what: what the message calls `classes` (e.g. "--classes").
        hint: the message's last sentence: what to do instead.
        named: False for a model whose class names are not known: only their number is compared.
    """
    found = list(dataset.classes_to_names)
    if (list(classes) == found) if named else (len(classes) == len(found)):
        return
    listing = lambda names: ", ".join(names[1:])
    if not named:
        raise ArgumentError(
            f"The model has {len(classes) - 1} classes, but {path} has {len(found) - 1} categories ({listing(found)})"
        )
    if sorted(classes) == sorted(found):
        raise ArgumentError(
            f"{what} ({listing(classes)}) list the categories of {path} in another order: the file numbers them "
            f"{listing(found)} (class ids 1 to {len(found) - 1}), so the ids would name the wrong classes. {hint}"
        )
    raise ArgumentError(
        f"{what} ({listing(classes)}) are not the categories of {path} ({listing(found)}, class ids 1 to "
        f"{len(found) - 1} in that order). {hint}"
    )


def _existing(paths, what, kind="dir"):
    check = os.path.isdir if kind == "dir" else os.path.isfile
    for path in paths:
        if not check(path):
            raise FileNotFoundError(f"{what} not found: {path}")
    return list(paths)


def check_data_paths(data_format, images_dirs=(), image_sets=(), annotations=(), labels_file=None, hdf5=None):
    """What `load_dataset` checks before it reads anything (the format, the arguments it needs,
    that the folders and files exist); the command line calls it before a model is loaded.

    Raises:
        ValueError: for an unknown format or missing arguments.
        FileNotFoundError: naming the missing directory or file.
    """
    if data_format not in FORMATS:
        raise ValueError(f"Expected `data_format` to be one of {set(FORMATS)}. Received: data_format={data_format!r}")
    if data_format == "hdf5":
        if not hdf5:
            raise ValueError("The 'hdf5' format needs an HDF5 file (--hdf5).")
        _existing([hdf5], "HDF5 data set", "file")
        return
    if not images_dirs:
        raise ValueError(f"The {data_format!r} format needs at least one images directory (--images-dir).")
    _existing(images_dirs, "Images directory")
    if data_format == "voc":
        if len(image_sets) != len(images_dirs) or (annotations and len(annotations) != len(images_dirs)):
            raise ValueError(
                "The 'voc' format needs one image-set file (--image-set) and one annotations directory (--annotations) "
                f"per images directory. Received: {len(images_dirs)} images directories, {len(image_sets)} image sets, "
                f"{len(annotations)} annotations directories"
            )
        _existing(image_sets, "Image-set file", "file")
        _existing(annotations, "Annotations directory")
        for path in image_sets:
            if not _lines(path):
                raise DatasetError(f"Image-set file {path} lists no image ids: it is empty")
    elif data_format == "coco":
        if len(annotations) != len(images_dirs):
            raise ValueError(
                "The 'coco' format needs one annotations file (--annotations) per images directory. "
                f"Received: {len(images_dirs)} images directories, {len(annotations)} annotation files"
            )
        _existing(annotations, "COCO annotations file", "file")
    else:
        if not labels_file:
            raise ValueError("The 'csv' format needs a labels file (--labels).")
        _existing([labels_file], "CSV labels file", "file")
        lines = _lines(labels_file, 2)
        if len(lines) < 2:
            what = "has only its header row" if lines else "is empty"
            raise DatasetError(
                f"CSV labels file {labels_file} {what}: it needs a header row, then one row per box "
                f"({','.join(CSV_FORMAT)})"
            )


def _lines(path, limit=1):
    """The first `limit` non-blank lines of a text file."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                found.append(line)
                if len(found) == limit:
                    break
    return found


def load_dataset(
    data_format,
    images_dirs=(),
    image_sets=(),
    annotations=(),
    labels_file=None,
    input_format=CSV_FORMAT,
    hdf5=None,
    classes=VOC_CLASSES,
    exclude_difficult=False,
    exclude_crowd=False,
    ground_truth=True,
    in_memory=False,
    verbose=True,
):
    """Reads a data set into a `DataGenerator`.

    Args:
        data_format: 'voc', 'coco', 'csv' or 'hdf5'.
        images_dirs: image directories (VOC: one per image set; COCO: one per
            annotation file; CSV: one).
        image_sets: VOC image-set files (one image id per line).
        annotations: VOC annotation directories, or COCO annotation files.
        labels_file: the CSV file.
        input_format: the CSV's first six columns.
        hdf5: a file written by `DataGenerator.create_hdf5_dataset`.
        classes: VOC class names, 'background' first.
        exclude_difficult: leave out VOC boxes flagged difficult.
        exclude_crowd: leave out COCO's crowd boxes (otherwise evaluation-neutral).
        ground_truth: COCO: read the boxes too.
        in_memory: decode all images up front.
        verbose: progress bars.

    Raises:
        ValueError: for an unknown format or missing arguments.
        FileNotFoundError: naming the missing directory or file, or the image files
            the annotations name that are missing.
    """
    check_data_paths(data_format, images_dirs, image_sets, annotations, labels_file, hdf5)
    if data_format == "hdf5":
        return DataGenerator(load_images_into_memory=in_memory, hdf5_dataset_path=hdf5, verbose=verbose)
    dataset = DataGenerator(load_images_into_memory=False, verbose=verbose)
    if data_format == "voc":
        dataset.parse_xml(
            images_dirs=list(images_dirs),
            image_set_filenames=list(image_sets),
            annotations_dirs=list(annotations),
            classes=list(classes),
            exclude_difficult=exclude_difficult,
            verbose=verbose,
        )
    elif data_format == "coco":
        dataset.parse_json(
            images_dirs=list(images_dirs),
            annotations_filenames=list(annotations),
            ground_truth_available=ground_truth,
            exclude_crowd=exclude_crowd,
            verbose=verbose,
        )
    else:
        dataset.parse_csv(
            images_dir=images_dirs[0], labels_filename=labels_file, input_format=list(input_format), verbose=verbose
        )
    source = {"voc": image_sets, "coco": annotations, "csv": [labels_file]}[data_format]
    if data_format == "coco":
        _check_coco_content(dataset, annotations, ground_truth, exclude_crowd)
    _warn_of_degenerate_boxes(dataset, ", ".join(source))
    _check_images(dataset.filenames, ", ".join(source))
    if in_memory:
        dataset.load_images()
    return dataset


def _check_coco_content(dataset, annotations, ground_truth, exclude_crowd):
    """A COCO file without images, or (for ground truth) without boxes, is an error naming it."""
    files = ", ".join(annotations)
    if not dataset.dataset_size:
        raise DatasetError(f'COCO annotations file {files}: no images (its "images" list is empty)')
    if ground_truth and not any(len(labels) for labels in dataset.labels):
        why = ' (or only crowd boxes, left out by "exclude crowd")' if exclude_crowd else ""
        raise DatasetError(f'COCO annotations file {files}: no boxes (its "annotations" list is empty{why})')


def _check_images(filenames, source):
    """Before any work: each image file the annotations name exists (a missing one would
    otherwise stop training when its batch comes). Each folder is listed once instead of a
    query per file (20,000 files on a local disk: 35 ms against 62 ms; on network file
    systems it saves a round trip per file)."""
    listed = {}

    def present(path):
        folder, name = os.path.split(path)
        if folder not in listed:
            try:
                listed[folder] = set(os.listdir(folder or "."))
            except OSError:
                listed[folder] = set()
        return name in listed[folder] or os.path.isfile(path)  # (case-insensitive file systems)

    missing = [path for path in filenames if not present(path)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(filenames)} image files that {source} names are missing: "
            f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"
        )


def _warn_of_degenerate_boxes(dataset, source):
    """Boxes with ``xmax <= xmin`` or ``ymax <= ymin`` (swapped columns, say): training's box
    filters drop them without a word, and evaluation counts them as objects never found."""
    if dataset.labels is None:
        return
    per_image = [(i, np.asarray(labels, dtype=np.float64)) for i, labels in enumerate(dataset.labels)]
    per_image = [
        (i, labels.reshape(len(labels), -1)) for i, labels in per_image if labels.size
    ]  # images without boxes: none
    if not per_image:
        return
    f = dataset.labels_format
    boxes = np.concatenate([labels for _, labels in per_image])
    image = np.concatenate([np.full(len(labels), i) for i, labels in per_image])
    bad = np.flatnonzero(degenerate_boxes(boxes, f))
    if len(bad):
        named = [
            f"{os.path.basename(dataset.filenames[image[k]])} (xmin {boxes[k, f['xmin']]:g}, ymin "
            f"{boxes[k, f['ymin']]:g}, "
            f"xmax {boxes[k, f['xmax']]:g}, ymax {boxes[k, f['ymax']]:g})"
            for k in bad[:3]
        ]
        warnings.warn(
            f"{len(bad)} of {len(boxes)} boxes in {source} have xmax <= xmin or ymax <= ymin (training leaves them "
            "out; "
            f"evaluation counts them as objects to find): {', '.join(named)}{', ...' if len(bad) > 3 else ''}",
            stacklevel=3,
        )


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def find_images(inputs):
    """Image files from a list of files and directories (directories: their images, sorted,
    not those of their subfolders). A file given twice (by name and in its folder) is
    listed once.

    Raises:
        FileNotFoundError: naming an input that does not exist, or if no image is found
            (naming the subfolders of the directories given, if they have any).
    """
    paths, seen, subfolders = [], set(), []
    for item in inputs:
        if os.path.isdir(item):
            names = sorted(os.listdir(item))
            found = [os.path.join(item, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
            subfolders += [os.path.join(item, name) for name in names if os.path.isdir(os.path.join(item, name))]
        elif os.path.isfile(item):
            found = [item]
        else:
            raise FileNotFoundError(f"Input not found: {item}")
        for path in found:
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                paths.append(path)
    if not paths:
        hint = f"; its subfolders are not searched, give them instead: {' '.join(subfolders[:5])}" if subfolders else ""
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {list(inputs)}{hint}")
    return paths
