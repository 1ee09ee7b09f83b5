"""Pascal VOC mean average precision, with the rules of the official devkit (VOCevaldet).

For each class, the detections of all images are sorted by confidence; each is
matched to the ground-truth box of its image with the highest IoU: an IoU below
`matching_iou_threshold` makes it a false positive; a match with a "difficult"
(evaluation-neutral) box is ignored; the first match of a box is a true positive and
any later one a false positive (a duplicate). Precision and recall follow along the
sorted list, and the average precision is either VOC2007's 11-point mean of the
interpolated precision ('sample') or VOC2010's area under the monotone precision
envelope ('integrate').

Matching is vectorized per class over all images: the ground truth of the class is
padded into an (images, boxes, 4) array, every detection takes its image's row, and
"first match of a box" is a first occurrence in confidence order.
"""

import math
import warnings

import numpy as np
from tqdm import tqdm

from ssd_keras.boxes.geometry import border_offset, check_one_of, iou_corners
from ssd_keras.encoding.decoding_config import DECODING
from ssd_keras.encoding.output_decoder import decode_detections
from ssd_keras.errors import DatasetError

AP_MODES = ("sample", "integrate")
MODEL_MODES = ("training", "inference", "inference_fast")
DATA_GENERATOR_MODES = ("resize", "pad")


# ---------------------------------------------------------------- pure functions


def match_class_detections(
    image_index,
    confidences,
    boxes,
    gt_boxes,
    gt_neutral,
    iou_threshold=0.5,
    border_pixels="include",
    sorting_algorithm="mergesort",
):
    """True and false positives of one class's detections, in descending confidence.

    Args:
        image_index: (n,) int, the image of each detection.
        confidences: (n,) scores.
        boxes: (n, 4) corners ``(xmin, ymin, xmax, ymax)``.
        gt_boxes: list (one per image) of (k_i, 4) ground-truth corners of this class.
        gt_neutral: list (one per image) of (k_i,) bools, or None: boxes that count
            neither way (VOC "difficult").
        iou_threshold: a detection matches a box with IoU >= this.
        border_pixels: 'include' is the devkit's +1-pixel convention.
        sorting_algorithm: NumPy sort kind for the confidence order ('mergesort' is
            stable: ties keep their input order).

    Returns:
        (order, true_positives, false_positives): the indices of the detections by
        descending confidence and two int arrays (n,) in that order. An ignored
        detection is 0 in both.
    """
    gt_image = np.repeat(np.arange(len(gt_boxes)), [len(g) for g in gt_boxes])
    flat_boxes = (
        np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gt_boxes])
        if len(gt_boxes)
        else np.zeros((0, 4))
    )
    flat_neutral = None
    if gt_neutral is not None:
        flat_neutral = (
            np.concatenate(
                [
                    np.zeros(len(g), bool) if f is None else np.asarray(f, dtype=bool).reshape(-1)
                    for g, f in zip(gt_boxes, gt_neutral)
                ]
            )
            if len(gt_boxes)
            else np.zeros(0, bool)
        )
    return _match(
        image_index,
        confidences,
        boxes,
        gt_image,
        flat_boxes,
        flat_neutral,
        len(gt_boxes),
        iou_threshold,
        border_pixels,
        sorting_algorithm,
    )


def _match(
    image_index,
    confidences,
    boxes,
    gt_image,
    gt_boxes,
    gt_neutral,
    n_images,
    iou_threshold,
    border_pixels,
    sorting_algorithm,
):
    """`match_class_detections` on flat ground truth: (g,) image indices, (g, 4) boxes, (g,) flags or None."""
    d = border_offset(border_pixels)
    n = len(confidences)
    order = np.argsort(-np.asarray(confidences, dtype=np.float64), kind=sorting_algorithm)
    tp = np.zeros(n, dtype=np.int64)
    fp = np.zeros(n, dtype=np.int64)
    if n == 0:
        return order, tp, fp
    image_index = np.asarray(image_index)[order]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
    if len(gt_image) == 0:
        fp[:] = 1
        return order, tp, fp
    # Ground truth padded to (images, max boxes per image, 4); padding never matches.
    by_image = np.argsort(gt_image, kind="stable")
    gt_image = np.asarray(gt_image)[by_image]
    counts = np.bincount(gt_image, minlength=n_images)
    rank = np.arange(len(gt_image)) - np.repeat(np.cumsum(counts) - counts, counts)
    max_gt = int(counts.max())
    padded = np.zeros((n_images, max_gt, 4))
    valid = np.zeros((n_images, max_gt), dtype=bool)
    neutral = np.zeros((n_images, max_gt), dtype=bool)
    padded[gt_image, rank] = np.asarray(gt_boxes, dtype=np.float64)[by_image]
    valid[gt_image, rank] = True
    if gt_neutral is not None:
        neutral[gt_image, rank] = np.asarray(gt_neutral, dtype=bool)[by_image]
    overlaps = iou_corners(boxes[:, None, :], padded[image_index], "element-wise", d)  # (n, max_gt)
    overlaps = np.where(valid[image_index], overlaps, -1.0)
    best = np.argmax(overlaps, axis=1)
    best_overlap = overlaps[np.arange(n), best]
    matched = best_overlap >= iou_threshold
    ignored = matched & neutral[image_index, best]
    candidates = np.flatnonzero(matched & ~ignored)
    # The first detection (in confidence order) of each box is the true positive.
    _, first = np.unique(image_index[candidates] * max_gt + best[candidates], return_index=True)
    tp[candidates[first]] = 1
    fp[:] = 1
    fp[candidates[first]] = 0
    fp[ignored] = 0
    return order, tp, fp


def precision_recall(true_positives, false_positives, num_gt):
    """Cumulative precision and recall along the sorted detections.

    Precision is 0 where nothing was counted yet; recall is NaN for a class without
    ground truth (its AP is undefined).
    """
    tp = np.cumsum(true_positives)
    fp = np.cumsum(false_positives)
    counted = tp + fp
    precision = np.divide(tp, counted, out=np.zeros(len(tp)), where=counted > 0)
    recall = tp / num_gt if num_gt > 0 else np.full(len(tp), np.nan)
    return precision, recall


def average_precision(precision, recall, mode="sample", num_recall_points=11):
    """AP from a precision/recall curve.

    'sample': the mean over `num_recall_points` recall levels ``t`` in [0, 1] of the
    highest precision at recall >= t (0 if none): VOC2007's 11-point AP.
    'integrate': the area under the precision envelope (precision made monotone
    decreasing from the right), from recall 0 to the last recall: VOC2010+'s AP.
    (The original's 'integrate' left out the first recall segment and the last
    precision: 0.75 instead of 1.0 for four true positives of four boxes.)
    """
    check_one_of("mode", mode, AP_MODES)
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if len(recall) and np.isnan(recall).all():
        return float("nan")
    if mode == "sample":
        total = 0.0
        for t in np.linspace(0, 1, num_recall_points):
            reached = precision[recall >= t]
            total += reached.max() if reached.size else 0.0
        return total / num_recall_points
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def iterate_predictions(
    model,
    data_generator,
    img_height,
    img_width,
    batch_size,
    data_generator_mode="resize",
    model_mode="inference",
    decode_args=None,
    class_column=0,
    verbose=True,
    skipped=None,
):
    """The model's detections on every image of a data set, in the images' own coordinates.

    Images get 3 channels and are resized to (img_height, img_width) ('resize'), or
    first padded to that aspect ratio ('pad'); raw output ('training' mode) is decoded
    with `decode_detections(**decode_args)`; the zero rows of the decoding layers are
    dropped; inverse transformations map the boxes back.

    `skipped`: None, and an image that cannot be read raises `DatasetError`; or a list,
    and such images are left out, each appended to it as ``(index, error)``.

    Yields:
        ``(image_id, detections)`` per image, detections (k, 6) in the model's format
        (image ids are 0, 1, ... when the data set has none).
    """
    from ssd_keras.data.transforms.geometric import Resize
    from ssd_keras.data.transforms.inverse import apply_inverse_transforms
    from ssd_keras.data.transforms.patch_sampling import RandomPadFixedAR
    from ssd_keras.data.transforms.photometric import ConvertTo3Channels

    check_one_of("data_generator_mode", data_generator_mode, DATA_GENERATOR_MODES)
    check_one_of("model_mode", model_mode, MODEL_MODES)
    transformations = [ConvertTo3Channels()]
    if data_generator_mode == "pad":
        transformations.append(RandomPadFixedAR(patch_aspect_ratio=img_width / img_height))
    transformations.append(Resize(img_height, img_width))
    size = data_generator.dataset_size
    ids = data_generator.image_ids if data_generator.image_ids is not None else list(range(size))
    for start in tqdm(
        range(0, size, batch_size), total=math.ceil(size / batch_size), desc="Predicting", disable=not verbose
    ):
        indices = np.arange(start, min(start + batch_size, size))
        try:
            images, inverters = data_generator.make_batch(
                indices,
                transformations,
                returns=("processed_images", "inverse_transform"),
                keep_images_without_gt=True,
                degenerate_box_handling="warn",
            )
        except DatasetError:
            if skipped is None:
                raise
            indices = _readable(data_generator, indices, skipped)
            if not len(indices):
                continue
            images, inverters = data_generator.make_batch(
                indices,
                transformations,
                returns=("processed_images", "inverse_transform"),
                keep_images_without_gt=True,
                degenerate_box_handling="warn",
            )
        n = len(images)
        if n < batch_size and start > 0:
            # The last batch, padded to the batch size: a compiled predict function (JAX,
            # XLA) is reused instead of compiled again for one smaller batch.
            images = np.concatenate([images, np.zeros((batch_size - n,) + images.shape[1:], images.dtype)])
        y_pred = np.asarray(model.predict_on_batch(images))[:n]
        _check_output(y_pred.shape, model_mode)
        if model_mode == "training":
            y_pred = decode_detections(y_pred, img_height=img_height, img_width=img_width, **(decode_args or {}))
        else:
            y_pred = [rows[rows[:, class_column] != 0] for rows in y_pred]  # the layers pad with zero rows
        for i, rows in zip(indices, apply_inverse_transforms(y_pred, inverters)):
            yield ids[i], rows


def _check_output(shape, model_mode):
    """Raises a ValueError when the model's output does not fit `model_mode` (a decoding
    model evaluated as 'training', or a raw one as 'inference'), naming what fits."""
    decoded = len(shape) == 3 and shape[-1] == 6
    if model_mode == "training" and decoded:
        raise ValueError(
            f"model_mode='training' decodes the raw output of a model built with mode='training', but this model "
            f"gives detections already, of shape {shape}: use model_mode='inference'."
        )
    if model_mode != "training" and not decoded:
        raise ValueError(
            f"model_mode={model_mode!r} expects detections of shape (batch, top_k, 6) from the decoding layers, but "
            f"this model gives shape {shape}: for a model built with mode='training', use model_mode='training' "
            f"(decoded here)."
        )


def _readable(data_generator, indices, skipped):
    """The items of `indices` whose images can be read; the others go to `skipped`."""
    good = []
    for i in indices:
        try:
            data_generator._image(i)
            good.append(i)
        except DatasetError as error:
            skipped.append((int(i), error))
    return np.array(good, dtype=np.int64)


# ---------------------------------------------------------------- the evaluator


class Evaluator:
    """Computes the mean average precision of a model on a data set.

    Args:
        model: a Keras SSD model.
        n_classes: number of positive classes.
        data_generator: a `DataGenerator` with labels (and `eval_neutral` for VOC's
            difficult boxes).
        model_mode: 'training' (raw output: decoded here), 'inference' or
            'inference_fast' (the model decodes).
        pred_format: columns of the decoded predictions.
        gt_format: columns of the ground-truth labels.

    Examples:
        >>> evaluator = Evaluator(model, n_classes=20, data_generator=dataset, model_mode='inference')  # doctest: +SKIP
        >>> mean_ap, aps = evaluator(300, 300, batch_size=8, return_average_precisions=True)  # doctest: +SKIP
    """

    def __init__(self, model, n_classes, data_generator, model_mode="inference", pred_format=None, gt_format=None):
        check_one_of("model_mode", model_mode, MODEL_MODES)
        self.model = model
        self.n_classes = n_classes
        self.data_generator = data_generator
        self.model_mode = model_mode
        self.pred_format = dict(pred_format or {"class_id": 0, "conf": 1, "xmin": 2, "ymin": 3, "xmax": 4, "ymax": 5})
        self.gt_format = dict(gt_format or {"class_id": 0, "xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4})
        self.prediction_results = None
        self.num_gt_per_class = None
        self.true_positives = None
        self.false_positives = None
        self.cumulative_true_positives = None
        self.cumulative_false_positives = None
        self.cumulative_precisions = None
        self.cumulative_recalls = None
        self.average_precisions = None
        self.mean_average_precision = None

    def __call__(
        self,
        img_height,
        img_width,
        batch_size,
        data_generator_mode="resize",
        round_confidences=False,
        matching_iou_threshold=0.5,
        border_pixels="include",
        sorting_algorithm="quicksort",
        average_precision_mode="sample",
        num_recall_points=11,
        ignore_neutral_boxes=True,
        return_precisions=False,
        return_recalls=False,
        return_average_precisions=False,
        verbose=True,
        decoding_confidence_thresh=DECODING.confidence_thresh,
        decoding_iou_threshold=DECODING.iou_threshold,
        decoding_top_k=DECODING.top_k,
        decoding_pred_coords="centroids",
        decoding_normalize_coords=True,
    ):
        """Predicts, matches and computes the mAP in one call.

        Returns:
            the mAP, or a list ``[mAP, average_precisions, precisions, recalls]`` with
            the parts that the `return_*` flags ask for (per class, index 0 unused).
        """
        self.predict_on_dataset(
            img_height,
            img_width,
            batch_size,
            data_generator_mode,
            decoding_confidence_thresh,
            decoding_iou_threshold,
            decoding_top_k,
            decoding_pred_coords,
            decoding_normalize_coords,
            border_pixels,
            round_confidences,
            verbose,
        )
        self.get_num_gt_per_class(ignore_neutral_boxes, verbose)
        self.match_predictions(ignore_neutral_boxes, matching_iou_threshold, border_pixels, sorting_algorithm, verbose)
        self.compute_precision_recall(verbose)
        self.compute_average_precisions(average_precision_mode, num_recall_points, verbose)
        mean_ap = self.compute_mean_average_precision(ret=True)
        extras = [
            value
            for flag, value in (
                (return_average_precisions, self.average_precisions),
                (return_precisions, self.cumulative_precisions),
                (return_recalls, self.cumulative_recalls),
            )
            if flag
        ]
        return [mean_ap] + extras if extras else mean_ap

    # ------------------------------------------------------------ prediction

    def predict_on_dataset(
        self,
        img_height,
        img_width,
        batch_size,
        data_generator_mode="resize",
        decoding_confidence_thresh=DECODING.confidence_thresh,
        decoding_iou_threshold=DECODING.iou_threshold,
        decoding_top_k=DECODING.top_k,
        decoding_pred_coords="centroids",
        decoding_normalize_coords=True,
        decoding_border_pixels="include",
        round_confidences=False,
        verbose=True,
        ret=False,
    ):
        """Runs the model over the whole data set and collects its detections per class.

        Images are resized to (img_height, img_width) ('resize') or first padded to the
        model's aspect ratio ('pad'); detections are mapped back to the original
        images. `prediction_results[c]` lists ``(image_id, confidence, xmin, ymin, xmax,
        ymax)`` for class c.
        """
        results = [[] for _ in range(self.n_classes + 1)]
        f = self.pred_format
        decode_args = dict(
            confidence_thresh=decoding_confidence_thresh,
            iou_threshold=decoding_iou_threshold,
            top_k=decoding_top_k,
            input_coords=decoding_pred_coords,
            normalize_coords=decoding_normalize_coords,
            border_pixels=decoding_border_pixels,
        )
        for image_id, rows in iterate_predictions(
            self.model,
            self.data_generator,
            img_height,
            img_width,
            batch_size,
            data_generator_mode,
            self.model_mode,
            decode_args,
            f["class_id"],
            verbose,
        ):
            for row in rows:
                confidence = round(float(row[f["conf"]]), 4) if round_confidences else float(row[f["conf"]])
                box = tuple(round(float(row[f[k]]), 1) for k in ("xmin", "ymin", "xmax", "ymax"))
                class_id = int(row[f["class_id"]])
                if 1 <= class_id <= self.n_classes:
                    results[class_id].append((image_id, confidence) + box)
        self.prediction_results = results
        return results if ret else None

    def write_predictions_to_txt(self, classes=None, out_file_prefix="comp3_det_test_", verbose=True):
        """Writes the detections in the Pascal VOC results format, one file per class:
        ``{prefix}{class name}.txt`` with lines ``image_id confidence xmin ymin xmax ymax``.
        (Image ids are written as they are; the original required integers.)"""
        self._require("prediction_results", "predict_on_dataset")
        for class_id in tqdm(range(1, self.n_classes + 1), desc="Writing", disable=not verbose):
            name = classes[class_id] if classes is not None else f"{class_id:04d}"
            with open(f"{out_file_prefix}{name}.txt", "w", encoding="utf8") as out:
                for image_id, confidence, xmin, ymin, xmax, ymax in self.prediction_results[class_id]:
                    image_id = f"{image_id:06d}" if isinstance(image_id, (int, np.integer)) else str(image_id)
                    out.write(f"{image_id} {confidence} {xmin} {ymin} {xmax} {ymax}\n")

    # ------------------------------------------------------------ ground truth and matching

    def _require(self, attribute, method):
        if getattr(self, attribute) is None:
            raise ValueError(f"Call `{method}` first: `{attribute}` is not computed yet.")

    def _ground_truth(self, ignore_neutral_boxes):
        """All ground truth, flat: (image index, class id, corners (g, 4), neutral flags)."""
        dataset = self.data_generator
        if dataset.labels is None:
            raise ValueError("The data generator has no labels to evaluate against.")
        g = self.gt_format
        width = max(g.values()) + 1
        labels = [np.asarray(rows, dtype=np.float64).reshape(-1, width) for rows in dataset.labels]
        image = np.repeat(np.arange(len(labels)), [len(rows) for rows in labels])
        flat = np.concatenate(labels) if labels else np.zeros((0, width))
        if ignore_neutral_boxes and dataset.eval_neutral is not None:
            neutral = (
                np.concatenate([np.asarray(n, dtype=bool).reshape(-1) for n in dataset.eval_neutral])
                if labels
                else np.zeros(0, bool)
            )
            if len(neutral) != len(flat):
                raise ValueError("`eval_neutral` does not hold one flag per ground-truth box.")
        else:
            neutral = np.zeros(len(flat), dtype=bool)
        return image, flat[:, g["class_id"]].astype(int), flat[:, [g["xmin"], g["ymin"], g["xmax"], g["ymax"]]], neutral

    def get_num_gt_per_class(self, ignore_neutral_boxes=True, verbose=True, ret=False):
        """Ground-truth boxes per class (index 0 unused), difficult ones excluded if asked."""
        _, classes, _, neutral = self._ground_truth(ignore_neutral_boxes)
        inside = (classes >= 1) & (classes <= self.n_classes) & ~neutral
        counts = np.bincount(classes[inside], minlength=self.n_classes + 1)[: self.n_classes + 1].astype(np.int64)
        self.num_gt_per_class = counts
        return counts if ret else None

    def match_predictions(
        self,
        ignore_neutral_boxes=True,
        matching_iou_threshold=0.5,
        border_pixels="include",
        sorting_algorithm="quicksort",
        verbose=True,
        ret=False,
    ):
        """True and false positives of every class (see `match_class_detections`).

        Every prediction is matched whatever `verbose` says (the original matched only
        the first one per class when `verbose=False`), and a class without predictions
        gets empty arrays in every list (the original misaligned the lists).
        """
        self._require("prediction_results", "predict_on_dataset")
        dataset = self.data_generator
        ids = dataset.image_ids if dataset.image_ids is not None else list(range(dataset.dataset_size))
        position = {str(image_id): i for i, image_id in enumerate(ids)}
        if len(position) != len(ids):
            raise ValueError("The data set's image ids are not unique; predictions cannot be matched to images.")
        gt_image, gt_class, gt_boxes, gt_neutral = self._ground_truth(ignore_neutral_boxes)
        kind = "stable" if sorting_algorithm == "mergesort" else sorting_algorithm
        tps, fps, cum_tps, cum_fps = [None], [None], [None], [None]
        for c in tqdm(range(1, self.n_classes + 1), desc="Matching", disable=not verbose):
            rows = self.prediction_results[c]
            columns = list(zip(*rows)) if rows else [()] * 6
            try:
                image_index = np.array([position[str(image_id)] for image_id in columns[0]], dtype=np.int64)
            except KeyError as error:
                raise ValueError(
                    f"A prediction of class {c} names image id {error.args[0]!r}, which is not in the data set."
                ) from None
            confidences = np.array(columns[1], dtype=np.float64)
            boxes = (
                np.column_stack([np.array(col, dtype=np.float64) for col in columns[2:6]]) if rows else np.zeros((0, 4))
            )
            mine = gt_class == c
            _, tp, fp = _match(
                image_index,
                confidences,
                boxes,
                gt_image[mine],
                gt_boxes[mine],
                gt_neutral[mine],
                len(ids),
                matching_iou_threshold,
                border_pixels,
                kind,
            )
            tps.append(tp)
            fps.append(fp)
            cum_tps.append(np.cumsum(tp))
            cum_fps.append(np.cumsum(fp))
        self.true_positives, self.false_positives = tps, fps
        self.cumulative_true_positives, self.cumulative_false_positives = cum_tps, cum_fps
        return (tps, fps, cum_tps, cum_fps) if ret else None

    def compute_precision_recall(self, verbose=True, ret=False):
        """Cumulative precisions and recalls per class (recall NaN for a class without ground truth)."""
        self._require("true_positives", "match_predictions")
        self._require("num_gt_per_class", "get_num_gt_per_class")
        precisions, recalls = [None], [None]
        for c in range(1, self.n_classes + 1):
            precision, recall = precision_recall(
                self.true_positives[c], self.false_positives[c], self.num_gt_per_class[c]
            )
            precisions.append(precision)
            recalls.append(recall)
        self.cumulative_precisions, self.cumulative_recalls = precisions, recalls
        return (precisions, recalls) if ret else None

    def compute_average_precisions(self, mode="sample", num_recall_points=11, verbose=True, ret=False):
        """AP per class (index 0 unused): 0.0 for a class with ground truth but no
        correct detection, NaN for a class without ground truth (reported, and left out
        of the mean)."""
        self._require("cumulative_precisions", "compute_precision_recall")
        check_one_of("mode", mode, AP_MODES)
        aps = [0.0]
        for c in range(1, self.n_classes + 1):
            if self.num_gt_per_class[c] == 0:
                aps.append(float("nan"))
            else:
                aps.append(
                    average_precision(
                        self.cumulative_precisions[c], self.cumulative_recalls[c], mode, num_recall_points
                    )
                )
        missing = [c for c in range(1, self.n_classes + 1) if self.num_gt_per_class[c] == 0]
        if missing:
            warnings.warn(
                f"Classes {missing} have no ground truth in the data set: their AP is undefined (NaN) and they are "
                "left out of the mean.",
                stacklevel=2,
            )
        self.average_precisions = aps
        return aps if ret else None

    def compute_mean_average_precision(self, ret=True):
        """The mean of the classes' APs, over the classes that have ground truth."""
        self._require("average_precisions", "compute_average_precisions")
        defined = [ap for ap in self.average_precisions[1:] if not np.isnan(ap)]
        self.mean_average_precision = float(np.mean(defined)) if defined else float("nan")
        return self.mean_average_precision if ret else None
