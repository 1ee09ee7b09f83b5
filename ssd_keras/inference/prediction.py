"""Prediction on image files: drawn PNGs and a JSON of detections."""

import os

import numpy as np

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


def predict_images(model, paths, out_dir, classes=None, batch_size=8, ground_truth=None, verbose=True):
    """Runs a decoding model on image files; writes ``<name>.png`` drawings and ``detections.json``.

    An image that cannot be read is skipped with a warning naming it; the others are
    written all the same.

    Args:
        model: a model with decoded output (batch, top_k, 6), e.g. from `inference.load_detector`.
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
    height, width = model.inputs[0].shape[1:3]
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
            dict(
                file=os.path.abspath(path),
                drawing=f"{name}.png",
                detections=[
                    dict(
                        class_id=int(r[0]),
                        **({"class": classes[int(r[0])]} if classes and int(r[0]) < len(classes) else {}),
                        confidence=round(float(r[1]), 4),
                        xmin=round(float(r[2]), 1),
                        ymin=round(float(r[3]), 1),
                        xmax=round(float(r[4]), 1),
                        ymax=round(float(r[5]), 1),
                    )
                    for r in rows
                ],
            )
        )
    failed = [(paths[index], str(error)) for index, error in skipped]
    for path, reason in failed:
        warnings.warn(f"Skipped {path}: {reason}", stacklevel=2)
    write_json(os.path.join(out_dir, "detections.json"), records, indent=1)
    return records, failed
