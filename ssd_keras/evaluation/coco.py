"""MS COCO evaluation helpers: category maps, detections in the COCO results format,
and pycocotools' COCOeval."""

import json
import warnings

import numpy as np

from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.evaluation.voc import iterate_predictions
from ssd_keras.utils.files import write_json

COCO_METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def get_coco_category_maps(annotations_file):
    """Maps between COCO category ids and consecutive class ids (1 .. n, in file order).

    Returns:
        ``(cats_to_classes, classes_to_cats, cats_to_names, classes_to_names)``;
        ``classes_to_names[0]`` is 'background'. The same maps as `DataGenerator.parse_json`.
    """
    with open(annotations_file, encoding="utf8") as f:
        categories = json.load(f)["categories"]
    cats_to_classes = {cat["id"]: i + 1 for i, cat in enumerate(categories)}
    classes_to_cats = {i + 1: cat["id"] for i, cat in enumerate(categories)}
    cats_to_names = {cat["id"]: cat["name"] for cat in categories}
    classes_to_names = ["background"] + [cat["name"] for cat in categories]
    return cats_to_classes, classes_to_cats, cats_to_names, classes_to_names


def predict_all_to_json(
    out_file,
    model,
    img_height,
    img_width,
    classes_to_cats,
    data_generator,
    batch_size,
    data_generator_mode="resize",
    model_mode="training",
    confidence_thresh=DECODING.confidence_thresh,
    iou_threshold=DECODING.iou_threshold,
    top_k=DECODING.top_k,
    pred_coords="centroids",
    normalize_coords=True,
    verbose=True,
):
    """Writes the model's detections on a COCO data set as a COCO results JSON file.

    Each detection becomes ``{'image_id', 'category_id', 'score', 'bbox': [x, y, w, h]}``
    (score rounded to 3 decimals, box to 1). 'pad' mode works (the original crashed).
    Arguments as `Evaluator.predict_on_dataset`; `classes_to_cats` from
    `get_coco_category_maps`. A detection whose box is not finite (a box regression
    that overflowed, as untrained weights can give) has no place in COCO's format and
    is left out, with a warning that counts them.

    Returns:
        the list of result dicts.
    """
    decode_args = dict(
        confidence_thresh=confidence_thresh,
        iou_threshold=iou_threshold,
        top_k=top_k,
        input_coords=pred_coords,
        normalize_coords=normalize_coords,
    )
    results = []
    n_not_finite = 0
    for image_id, rows in iterate_predictions(
        model,
        data_generator,
        img_height,
        img_width,
        batch_size,
        data_generator_mode,
        model_mode,
        decode_args,
        verbose=verbose,
    ):
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        finite = np.isfinite(rows).all(axis=1)
        n_not_finite += int(np.count_nonzero(~finite))
        for class_id, score, xmin, ymin, xmax, ymax in rows[finite]:
            results.append(
                {
                    "image_id": int(image_id)
                    if isinstance(image_id, (int, np.integer)) or str(image_id).isdigit()
                    else image_id,
                    "category_id": int(classes_to_cats[int(class_id)]),
                    "score": round(float(score), 3),
                    "bbox": [
                        round(float(xmin), 1),
                        round(float(ymin), 1),
                        round(float(xmax - xmin), 1),
                        round(float(ymax - ymin), 1),
                    ],
                }
            )
    if n_not_finite:
        warnings.warn(
            f"{n_not_finite} detections with non-finite box coordinates (the model's box regression "
            f"overflowed) were left out of {out_file}.",
            stacklevel=2,
        )
    write_json(out_file, results)
    return results


def evaluate_coco(annotations_file, results_file, verbose=True):
    """Runs pycocotools' COCOeval (bbox) and returns its 12 standard numbers.

    Annotations without ``iscrowd`` count as not crowd, and without ``area`` get their
    box's area (files converted from other formats often lack both, which `parse_json`
    does not need; pycocotools failed with ``KeyError: 'iscrowd'``).

    Returns:
        dict name -> value, names ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100,
        ARs, ARm, ARl`` (-1 where COCO has nothing to measure, e.g. no small objects).

    Raises:
        ImportError: naming the package if pycocotools is not installed
            (``pip install ".[coco]"``).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ImportError("COCO metrics need pycocotools: pip install pycocotools (or the '.[coco]' extra).") from None
    import contextlib
    import io

    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = COCO(annotations_file)
        for ann in coco_gt.dataset.get("annotations", []):  # the index holds these same dicts
            ann.setdefault("iscrowd", 0)
            if "area" not in ann:
                ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        coco_dt = coco_gt.loadRes(results_file)
        evaluation = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluation.params.imgIds = sorted(coco_gt.getImgIds())
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return dict(zip(COCO_METRIC_NAMES, (float(v) for v in evaluation.stats)))
