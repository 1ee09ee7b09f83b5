"""Prediction on image files: drawn PNGs and a JSON of detections."""

import os

import numpy as np

from ssd_keras.data.loading import IMAGE_EXTENSIONS, find_images  # noqa: F401  (this module's API too)


def predict_images(model, paths, out_dir, classes=None, batch_size=8, ground_truth=None, verbose=True):
    """Runs a decoding model on image files; writes ``<name>.png`` drawings and ``detections.json``.

    An image that cannot be read is skipped with a warning naming it; the others are
    written all the same.

    Args:
        model: a `Detector`, or a Keras model with decoded output (batch, top_k, 6).
        paths: image files.
        out_dir: output directory.
        classes: class names by id, for the labels and the JSON.
        batch_size: images per batch.
        ground_truth: optional list (one per image) of ``[class_id, xmin, ymin, xmax, ymax]``
            rows to draw as well.
        verbose: progress bar.

    Returns:
        ``(records, failed)``: the list written to ``detections.json``, per image its
        'file' (the absolute path), 'drawing' (the PNG's name in `out_dir`) and
        'detections' (dicts with 'class_id', 'class', 'confidence', 'xmin', 'ymin',
        'xmax', 'ymax' in the image's own pixel coordinates); and the ``(path, reason)``
        of each image that could not be read.
    """
    import warnings

    from ssd_keras.data.generator import DataGenerator
    from ssd_keras.evaluation.voc import iterate_predictions
    from ssd_keras.inference.loading import draw_boxes, write_png
    from ssd_keras.utils.files import write_json

    dataset = DataGenerator(filenames=list(paths), verbose=False)
    height, width = input_size(model)
    os.makedirs(out_dir, exist_ok=True)
    records, skipped = [], []
    used = set()
    for index, rows in iterate_predictions(
        model, dataset, height, width, batch_size, "resize", "inference", verbose=verbose, skipped=skipped
    ):
        path = paths[index]
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        image = dataset._image(index)
        truth = ground_truth[index] if ground_truth is not None else ()
        stem = os.path.splitext(os.path.basename(path))[0]
        name = stem if stem not in used else f"{stem}_{index}"
        used.add(name)
        write_png(os.path.join(out_dir, f"{name}.png"), draw_boxes(image, rows, truth, classes))
        records.append(
            dict(file=os.path.abspath(path), drawing=f"{name}.png", detections=detection_records(rows, classes))
        )
    failed = [(paths[index], str(error)) for index, error in skipped]
    for path, reason in failed:
        warnings.warn(f"Skipped {path}: {reason}", stacklevel=2)
    write_json(os.path.join(out_dir, "detections.json"), records, indent=1)
    return records, failed


def input_size(model):
    """``(height, width)`` of a `Detector`'s or a Keras model's input."""
    size = getattr(model, "input_size", None)
    return tuple(size) if size is not None else tuple(int(n) for n in model.inputs[0].shape[1:3])


def detection_records(rows, classes=None):
    """Rows ``[class_id, confidence, xmin, ymin, xmax, ymax]`` as the dicts of
    ``detections.json`` (`Detections.to_records`): class names where `classes` has them."""
    from ssd_keras.inference.detector import Detections

    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    ids = rows[:, 0].astype(int)
    names = [classes[c] if classes and 0 <= c < len(classes) else None for c in ids]
    records = Detections(rows[:, 2:6], rows[:, 1], ids, names).to_records()
    for record in records:
        if record["class"] is None:
            del record["class"]
    return records
