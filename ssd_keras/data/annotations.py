"""Reading annotation files: CSV (one box per row), Pascal VOC XML, MS COCO JSON.

Each reader returns plain lists (file names, image ids, label arrays, evaluation-neutral
flags) and leaves the data set alone; `DataGenerator.parse_csv`, `parse_xml` and
`parse_json` are the documented entry points that store them. `box_row` orders a box's
values as the data set's `labels_output_format` asks.

Bad files raise `DatasetError` naming the file and the line, object or annotation.
"""

import csv
import json
import os
from collections import defaultdict

import numpy as np
from tqdm import tqdm

from ssd_keras.errors import DatasetError

CSV_COLUMNS = ("image_name", "xmin", "xmax", "ymin", "ymax", "class_id")


def labels_array(rows, n_columns=5):
    """Box rows as a float64 array ``(k, n_columns)`` (``(0, n_columns)`` for no rows)."""
    return np.array(rows, dtype=np.float64).reshape(-1, n_columns)


def read_csv(labels_filename, input_format, include_classes, box_row):
    """``{image name: [box rows]}`` from a CSV file with one header row.

    Args:
        labels_filename: the file.
        input_format: the order of its first six columns (`CSV_COLUMNS`, permuted).
        include_classes: 'all' or the class ids to keep.
        box_row: ``box_row(class_id, xmin, ymin, xmax, ymax)`` -> a label row.

    Raises:
        ValueError: for an `input_format` that is no permutation of `CSV_COLUMNS`.
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
        boxes[image_name].append(box_row(class_id, xmin, ymin, xmax, ymax))
    return boxes


def _flag(obj, tag):
    element = obj.find(tag, recursive=False)
    try:
        return element is not None and int(float(element.text)) != 0
    except ValueError:
        return False


def read_voc(
    images_dirs,
    image_set_filenames,
    annotations_dirs,
    classes,
    include_classes,
    exclude_truncated,
    exclude_difficult,
    box_row,
    n_columns,
    verbose,
):
    """``(filenames, image_ids, labels, eval_neutral)`` of Pascal VOC parts (BeautifulSoup).

    Without annotation directories only the file names and ids are read (labels and
    flags are None). Arguments as `DataGenerator.parse_xml`, plus `box_row` and the
    number of label columns.

    Raises:
        DatasetError: naming the file (and object) for a missing or unparsable file, an
            unknown class name or a malformed box.
    """
    from bs4 import BeautifulSoup

    filenames, image_ids, labels, eval_neutral = [], [], [], []
    annotations_dirs = list(annotations_dirs or [])
    for k, (images_dir, set_file) in enumerate(zip(images_dirs, image_set_filenames)):
        try:
            with open(set_file, encoding="utf8") as f:
                ids = [line.strip() for line in f if line.strip()]
        except OSError as error:
            raise DatasetError(f"Cannot read image set file {set_file}: {error}") from None
        annotations_dir = annotations_dirs[k] if k < len(annotations_dirs) else None
        for image_id in tqdm(ids, desc=f"Processing {os.path.basename(set_file)}", disable=not verbose):
            image_ids.append(image_id)
            filenames.append(os.path.join(images_dir, image_id + ".jpg"))
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
                if (
                    (include_classes != "all" and class_id not in include_classes)
                    or (exclude_truncated and truncated)
                    or (exclude_difficult and difficult)
                ):
                    continue
                bndbox = obj.find("bndbox", recursive=False)
                try:
                    coords = [float(bndbox.find(tag, recursive=False).text) for tag in ("xmin", "ymin", "xmax", "ymax")]
                except (AttributeError, ValueError):
                    raise DatasetError(f"{path}, object {i} ({name}): missing or malformed <bndbox>.") from None
                boxes.append(box_row(class_id, *coords))
                neutral.append(difficult)
            labels.append(labels_array(boxes, n_columns))
            eval_neutral.append(np.array(neutral, dtype=bool))
    if not annotations_dirs:
        labels, eval_neutral = None, None
    return filenames, image_ids, labels, eval_neutral


def read_coco(
    images_dirs,
    annotations_filenames,
    ground_truth_available,
    include_classes,
    box_row,
    n_columns,
    verbose,
    exclude_crowd=False,
):
    """``(filenames, image_ids, labels, eval_neutral, maps)`` of MS COCO annotation files.

    `maps` holds `cats_to_names`, `classes_to_names`, `cats_to_classes` and
    `classes_to_cats` (class ids are consecutive, in the order of the first file's
    categories). Boxes ``[x, y, w, h]`` become corners. `eval_neutral` flags the boxes
    marked ``"iscrowd": 1`` (left out with `exclude_crowd`). Arguments as
    `DataGenerator.parse_json`, plus `box_row` and the number of label columns.

    Raises:
        DatasetError: for a missing or malformed file, or an annotation that names an
            unknown category or image.
    """
    filenames, image_ids, labels, eval_neutral, maps = [], [], [], [], {}
    for k, (images_dir, path) in enumerate(zip(images_dirs, annotations_filenames)):
        try:
            with open(path, encoding="utf8") as f:
                annotations = json.load(f)
            images = annotations["images"]
            categories = annotations["categories"] if k == 0 else None
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(f"Cannot read COCO annotations from {path}: {error!r}") from None
        if k == 0:
            maps = dict(
                cats_to_names={cat["id"]: cat["name"] for cat in categories},
                classes_to_names=["background"] + [cat["name"] for cat in categories],
                cats_to_classes={cat["id"]: i + 1 for i, cat in enumerate(categories)},
                classes_to_cats={i + 1: cat["id"] for i, cat in enumerate(categories)},
            )
        cats_to_classes = maps["cats_to_classes"]
        by_image, crowd_by_image = defaultdict(list), defaultdict(list)
        if ground_truth_available:
            known_images = {image["id"] for image in images}
            for i, ann in enumerate(annotations.get("annotations", [])):
                try:
                    category, image_id, (x, y, w, h) = ann["category_id"], ann["image_id"], map(float, ann["bbox"])
                except (KeyError, TypeError, ValueError):
                    raise DatasetError(
                        f"{path}, annotation {i}: expected 'category_id', 'image_id' and a 'bbox' of 4 numbers; "
                        f"got {ann!r:.200}."
                    ) from None
                if category not in cats_to_classes:
                    raise DatasetError(f"{path}, annotation {i}: unknown category id {category}.")
                if image_id not in known_images:
                    raise DatasetError(f"{path}, annotation {i}: unknown image id {image_id}.")
                crowd = bool(ann.get("iscrowd", 0))
                if (include_classes == "all" or category in include_classes) and not (crowd and exclude_crowd):
                    by_image[image_id].append(box_row(cats_to_classes[category], x, y, x + w, y + h))
                    crowd_by_image[image_id].append(crowd)
        for image in tqdm(images, desc=f"Processing {os.path.basename(path)}", disable=not verbose):
            filenames.append(os.path.join(images_dir, image["file_name"]))
            image_ids.append(image["id"])
            if ground_truth_available:
                labels.append(labels_array(by_image[image["id"]], n_columns))
                eval_neutral.append(np.array(crowd_by_image[image["id"]], dtype=bool))
    if not ground_truth_available:
        labels, eval_neutral = None, None
    return filenames, image_ids, labels, eval_neutral, maps
