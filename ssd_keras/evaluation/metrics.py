"""Evaluation for the command line and the demo: VOC mAP with a per-class table, COCO metrics."""

import math
import os

import numpy as np


def evaluate_voc(
    model,
    dataset,
    n_classes,
    img_height,
    img_width,
    batch_size=8,
    data_mode="resize",
    ap_mode="sample",
    model_mode="inference",
    verbose=True,
):
    """Pascal VOC mAP of a decoding model (devkit rules, difficult boxes neutral).

    Returns:
        dict with 'mAP' (mean over the classes that have ground truth), 'AP' (per
        class id 1..n_classes, None where a class has no ground truth), 'num_gt'
        (per class) and 'ap_mode'.
    """
    from ssd_keras.evaluation.voc import Evaluator

    evaluator = Evaluator(model, n_classes, dataset, model_mode=model_mode)
    mean_ap, average_precisions = evaluator(
        img_height,
        img_width,
        batch_size,
        data_generator_mode=data_mode,
        average_precision_mode=ap_mode,
        num_recall_points=11,
        ignore_neutral_boxes=True,
        return_average_precisions=True,
        verbose=verbose,
    )
    aps = [None if (ap is None or math.isnan(ap)) else float(ap) for ap in list(average_precisions)[1:]]
    return dict(
        mAP=float(mean_ap), AP=aps, num_gt=[int(n) for n in list(evaluator.num_gt_per_class)[1:]], ap_mode=ap_mode
    )


def format_voc_table(results, classes):
    """The per-class AP table printed by ``ssd-keras evaluate``."""
    width = max(len(name) for name in classes[1:]) + 2
    lines = [f"{'class':<{width}}{'AP':>8}{'GT boxes':>10}"]
    for name, ap, n_gt in zip(classes[1:], results["AP"], results["num_gt"]):
        lines.append(f"{name:<{width}}{('-' if ap is None else f'{ap:.3f}'):>8}{n_gt:>10}")
    mode = "11-point" if results["ap_mode"] == "sample" else "integrated"
    lines.append(f"{'mAP (' + mode + ')':<{width}}{results['mAP']:>8.3f}")
    return "\n".join(lines)


def evaluate_coco_metrics(
    model,
    dataset,
    annotations_file,
    img_height,
    img_width,
    batch_size=8,
    data_mode="resize",
    out_dir=None,
    verbose=True,
):
    """COCO's 12 metrics of a decoding model on a data set read with `parse_json` (its
    `classes_to_cats` give the category of each of the model's class ids)."""
    import contextlib
    import tempfile

    from ssd_keras.evaluation.coco import evaluate_coco, get_coco_category_maps, predict_all_to_json

    classes_to_cats = getattr(dataset, "classes_to_cats", None) or get_coco_category_maps(annotations_file)[1]
    # The detections file goes to `out_dir`, or without one to a folder removed afterwards.
    with contextlib.nullcontext(out_dir) if out_dir else tempfile.TemporaryDirectory(prefix="ssd_keras_") as folder:
        os.makedirs(folder, exist_ok=True)
        results_file = os.path.join(folder, "detections_coco.json")
        results = predict_all_to_json(
            results_file,
            model,
            img_height,
            img_width,
            classes_to_cats,
            dataset,
            batch_size,
            data_generator_mode=data_mode,
            model_mode="inference",
            verbose=verbose,
        )
        if not results:
            raise ValueError("The model detected nothing on the data set; COCO metrics are undefined.")
        metrics = evaluate_coco(annotations_file, results_file, verbose=verbose)
    return {name: float(np.round(value, 4)) for name, value in metrics.items()}
