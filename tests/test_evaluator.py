"""Pascal VOC AP: hand-computed cases, an independent devkit implementation, the Evaluator end to end."""

import numpy as np
import pytest
from reference import voc_devkit_ap

from ssd_keras.data.generator import DataGenerator
from ssd_keras.evaluation.voc import Evaluator, average_precision, match_class_detections, precision_recall


def _ap(tp, fp, num_gt, mode):
    precision, recall = precision_recall(np.array(tp), np.array(fp), num_gt)
    return average_precision(precision, recall, mode)


@pytest.mark.parametrize(
    "tp, fp, num_gt, sample, integrate",
    [
        # Four detections, four boxes, all correct: precision 1 at every recall.
        ([1, 1, 1, 1], [0, 0, 0, 0], 4, 1.0, 1.0),
        # TP FP TP TP FP of 4 boxes: precision 1, .5, .667, .75, .6 at recall .25, .25, .5, .75, .75.
        # 11-point: t = 0 .. 0.7 -> max precision 1 (t <= .25) or .75 -> 3 x 1 + 5 x .75 = 6.75 / 11;
        # t = 0.8 .. 1 -> 0. Integrate: .25 x 1 + .5 x .75 = 0.625 (the original gave 0.4167).
        ([1, 0, 1, 1, 0], [0, 1, 0, 0, 1], 4, 6.75 / 11, 0.625),
        # A single correct detection of one box: 1.0 both ways (the original's 'integrate' gave 0).
        ([1], [0], 1, 1.0, 1.0),
        # Nothing correct: 0.
        ([0, 0], [1, 1], 3, 0.0, 0.0),
    ],
)
def test_average_precision_by_hand(tp, fp, num_gt, sample, integrate):
    assert _ap(tp, fp, num_gt, "sample") == pytest.approx(sample)
    assert _ap(tp, fp, num_gt, "integrate") == pytest.approx(integrate)


def test_matching_by_hand():
    # Image 0: boxes A (0..9) and difficult D (20..29); image 1: box B.
    gt = [np.array([[0, 0, 9, 9], [20, 20, 29, 29]], float), np.array([[0, 0, 9, 9]], float)]
    neutral = [np.array([False, True]), np.array([False])]
    detections = np.array(
        [
            [0, 0, 9, 9],  # 0.9 image 0: A -> TP
            [0, 0, 9, 9],  # 0.8 image 0: A again -> FP (duplicate)
            [20, 20, 29, 29],  # 0.7 image 0: difficult -> ignored
            [50, 50, 59, 59],  # 0.6 image 0: nothing -> FP
            [1, 1, 9, 9],  # 0.5 image 1: B, IoU 81/100 -> TP
        ],
        float,
    )
    order, tp, fp = match_class_detections([0, 0, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5], detections, gt, neutral)
    np.testing.assert_array_equal(order, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tp, [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(fp, [0, 1, 0, 1, 0])
    # Without neutral flags the difficult box is a true positive.
    _, tp, fp = match_class_detections([0, 0, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5], detections, gt, None)
    np.testing.assert_array_equal(tp, [1, 0, 1, 0, 1])
    # IoU threshold inclusive, with the +1 pixel convention: (0..9) vs (0..8) = 90 / 100.
    _, tp, _ = match_class_detections([1], [1.0], [[0, 0, 9, 8]], gt, None, iou_threshold=0.9)
    assert tp.tolist() == [1]
    _, tp, _ = match_class_detections([1], [1.0], [[0, 0, 9, 8]], gt, None, iou_threshold=0.9, border_pixels="half")
    assert tp.tolist() == [0]  # 81 / 90 + ... below 0.9 without the +1


def test_class_without_ground_truth_has_nan_ap():
    precision, recall = precision_recall(np.array([0, 0]), np.array([1, 1]), 0)
    assert np.isnan(average_precision(precision, recall, "sample"))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["sample", "integrate"])
def test_equals_an_independent_devkit_implementation(seed, mode):
    rng = np.random.default_rng(seed)
    n_images = 30
    ground_truth, gt_boxes, gt_neutral = {}, [], []
    for image in range(n_images):
        k = rng.integers(0, 4)
        xy = rng.uniform(0, 200, (k, 2))
        boxes = np.column_stack([xy, xy + rng.uniform(10, 80, (k, 2))]).round()
        difficult = rng.uniform(size=k) < 0.2
        ground_truth[image] = [(*b, d) for b, d in zip(boxes, difficult)]
        gt_boxes.append(boxes)
        gt_neutral.append(difficult)
    detections = []
    for image in range(n_images):
        for box in gt_boxes[image]:  # noisy copies of the truth, sometimes twice
            for _ in range(rng.integers(0, 3)):
                detections.append((image, rng.uniform(), *(box + rng.normal(0, 6, 4))))
        for _ in range(rng.integers(0, 3)):  # false alarms
            xy = rng.uniform(0, 200, 2)
            detections.append((image, rng.uniform(), *xy, *(xy + rng.uniform(10, 60, 2))))
    rows = np.array(detections)
    _, tp, fp = match_class_detections(
        rows[:, 0].astype(int), rows[:, 1], rows[:, 2:], gt_boxes, gt_neutral, 0.5, "include", "stable"
    )
    num_gt = sum(int((~n).sum()) for n in gt_neutral)
    precision, recall = precision_recall(tp, fp, num_gt)
    expected = voc_devkit_ap(detections, ground_truth, use_07_metric=(mode == "sample"))
    assert average_precision(precision, recall, mode) == pytest.approx(expected, abs=1e-12)


class _StubModel:
    """Returns the given detections for the images in order, as an 'inference'-mode model would
    (rows in the resized image, zero-padded to top_k). The evaluator pads a short last batch
    to the batch size with blank images: those get no detections."""

    def __init__(self, per_image, top_k=10):
        self.per_image = list(per_image)
        self.top_k = top_k

    def predict_on_batch(self, images):
        out = np.zeros((len(images), self.top_k, 6))
        for i in range(len(images)):
            rows = np.asarray(self.per_image.pop(0) if self.per_image else []).reshape(-1, 6)
            out[i, : len(rows)] = rows
        return out


def _dataset(tmp_path, labels, neutral=None, size=(40, 60)):
    import cv2

    names = []
    for i in range(len(labels)):
        path = str(tmp_path / f"{i}.png")
        cv2.imwrite(path, np.zeros(size + (3,), np.uint8))
        names.append(path)
    return DataGenerator(
        filenames=names,
        labels=labels,
        image_ids=[f"im{i}" for i in range(len(labels))],
        eval_neutral=neutral,
        verbose=False,
    )


def _as_predictions(labels, scale, confidence=0.9):
    rows = np.asarray(labels, float).reshape(-1, 5)
    boxes = rows[:, 1:] * [scale[1], scale[0], scale[1], scale[0]]
    return np.column_stack([rows[:, 0], np.full(len(rows), confidence), boxes])


def test_evaluator_end_to_end(tmp_path):
    labels = [
        np.array([[1, 5, 5, 25, 30], [2, 30, 10, 55, 35]], float),
        np.array([[1, 10, 10, 30, 20], [3, 0, 0, 10, 10]], float),
        np.zeros((0, 5)),
    ]
    neutral = [np.array([False, False]), np.array([False, True]), np.array([], bool)]
    dataset = _dataset(tmp_path, labels, neutral)
    scale = (30 / 40, 30 / 60)  # the evaluator resizes to 30 x 30; the stub answers in that frame
    perfect = [_as_predictions(rows, scale) for rows in labels]
    evaluator = Evaluator(_StubModel(perfect), n_classes=4, data_generator=dataset, model_mode="inference")
    with pytest.warns(UserWarning, match=r"Classes \[3, 4\] have no ground truth"):
        mean_ap, aps = evaluator(30, 30, batch_size=2, return_average_precisions=True, verbose=False)
    # Class 3's only box is difficult: no ground truth left; class 4 has none. Both NaN, left out.
    assert mean_ap == pytest.approx(1.0) and aps[1] == pytest.approx(1.0) and aps[2] == pytest.approx(1.0)
    assert np.isnan(aps[3]) and np.isnan(aps[4])
    assert evaluator.num_gt_per_class.tolist() == [0, 2, 1, 0, 0]
    # verbose=False still matches every prediction (the original matched one per class).
    assert evaluator.true_positives[1].tolist() == [1, 1]
    # A duplicate and a miss: class 1 gets one extra (lower) duplicate, class 2 is not detected.
    worse = [np.vstack([perfect[0][:1], perfect[0][:1] * [1, 0.5, 1, 1, 1, 1]]), perfect[1], []]
    evaluator = Evaluator(_StubModel(worse), n_classes=4, data_generator=dataset, model_mode="inference")
    with pytest.warns(UserWarning, match="no ground truth"):
        mean_ap = evaluator(30, 30, batch_size=3, verbose=False, average_precision_mode="integrate")
    # Class 1: TP (im0), then TP (im1, conf 0.9 ties: stable order), duplicate FP at 0.45 -> AP 1.0;
    # class 2: no predictions -> 0.
    assert evaluator.average_precisions[2] == 0.0 and evaluator.average_precisions[1] == pytest.approx(1.0)
    assert mean_ap == pytest.approx(0.5)
    evaluator.write_predictions_to_txt(
        classes=["bg", "a", "b", "c", "d"], out_file_prefix=str(tmp_path / "det_"), verbose=False
    )
    assert (tmp_path / "det_a.txt").read_text().splitlines()[0].startswith("im0 0.9 ")


def test_evaluator_errors(tmp_path):
    dataset = _dataset(tmp_path, [np.array([[1, 0, 0, 5, 5]], float)])
    with pytest.raises(ValueError, match="Expected `model_mode` to be one of"):
        Evaluator(None, 1, dataset, model_mode="train")
    evaluator = Evaluator(_StubModel([]), 1, dataset)
    with pytest.raises(ValueError, match="Call `predict_on_dataset` first"):
        evaluator.match_predictions()
    with pytest.raises(ValueError, match="Expected `mode` to be one of"):
        average_precision([1.0], [1.0], mode="voc")


class _RawModel:
    """A model built with mode='training': raw output, 2 classes + background + 12."""

    def predict_on_batch(self, images):
        return np.zeros((len(images), 10, 3 + 12))


def test_a_model_that_does_not_fit_model_mode_is_named(tmp_path):
    # Before, a decoding model evaluated as 'training' failed inside decode_detections on its
    # shape, and a raw model as 'inference' was read as detections: mAP 0 and no error.
    dataset = _dataset(tmp_path, [np.array([[1, 0, 0, 5, 5]], float)])
    with pytest.raises(
        ValueError, match=r"this model gives detections already, of shape \(1, 10, 6\): use model_mode='inference'"
    ):
        Evaluator(_StubModel([]), 2, dataset, model_mode="training")(30, 30, batch_size=1, verbose=False)
    for mode in ("inference", "inference_fast"):
        with pytest.raises(
            ValueError,
            match=rf"model_mode='{mode}' expects detections .* this model gives shape \(1, 10, 15\): .*"
            r"use model_mode='training'",
        ):
            Evaluator(_RawModel(), 2, dataset, model_mode=mode)(30, 30, batch_size=1, verbose=False)


def test_coco_json_scored_by_pycocotools(tmp_path):
    import json

    from ssd_keras.evaluation.coco import evaluate_coco, get_coco_category_maps, predict_all_to_json

    labels = [np.array([[1, 5, 5, 25, 30], [2, 30, 10, 55, 35]], float), np.array([[2, 10, 12, 30, 20]], float)]
    coco = {
        "images": [{"id": 11 + i, "file_name": f"{i}.png", "height": 40, "width": 60} for i in range(2)],
        "categories": [{"id": 4, "name": "cat"}, {"id": 9, "name": "dog"}],
        "annotations": [],
    }
    cats = {1: 4, 2: 9}
    for i, image_labels in enumerate(labels):
        for c, x0, y0, x1, y1 in image_labels:
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": 11 + i,
                    "category_id": cats[int(c)],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps(coco))
    cats_to_classes, classes_to_cats, _, names = get_coco_category_maps(str(annotations))
    assert cats_to_classes == {4: 1, 9: 2} and names == ["background", "cat", "dog"]
    for mode in ("resize", "pad"):  # 'pad' crashed in the original
        # Square images for 'pad': padding to the model's aspect ratio adds nothing, so the stub knows the frame.
        size = (40, 60) if mode == "resize" else (60, 60)
        dataset = _dataset(tmp_path, labels, size=size)
        dataset.image_ids = [11, 12]
        results_file = tmp_path / f"results_{mode}.json"
        model = _StubModel([_as_predictions(rows, (30 / size[0], 30 / size[1])) for rows in labels])
        results = predict_all_to_json(
            str(results_file),
            model,
            30,
            30,
            classes_to_cats,
            dataset,
            batch_size=2,
            data_generator_mode=mode,
            model_mode="inference",
            verbose=False,
        )
        assert results[0] == {"image_id": 11, "category_id": 4, "score": 0.9, "bbox": [5.0, 5.0, 20.0, 25.0]}
        stats = evaluate_coco(str(annotations), str(results_file), verbose=False)
        assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0) and len(stats) == 12
        # A file without 'iscrowd' and 'area' (converted from another format): the same numbers
        # (pycocotools alone raised KeyError: 'iscrowd').
        bare = dict(
            coco,
            annotations=[{k: v for k, v in a.items() if k not in ("iscrowd", "area")} for a in coco["annotations"]],
        )
        (tmp_path / "bare.json").write_text(json.dumps(bare))
        assert evaluate_coco(str(tmp_path / "bare.json"), str(results_file), verbose=False) == stats


def test_coco_json_leaves_out_boxes_that_are_not_finite(tmp_path):
    # An untrained SSD300's box regression can overflow to inf: COCO's format has no place for
    # such a box (JSON has no Infinity and pycocotools fails on null), so it is left out, counted.
    import json

    from ssd_keras.evaluation.coco import evaluate_coco, predict_all_to_json

    labels = [np.array([[1, 5, 5, 25, 30]], float)]
    coco = {
        "images": [{"id": 11, "file_name": "0.png", "height": 40, "width": 60}],
        "categories": [{"id": 4, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 11, "category_id": 4, "bbox": [5, 5, 20, 25], "area": 500, "iscrowd": 0}],
    }
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps(coco))
    dataset = _dataset(tmp_path, labels)
    dataset.image_ids = [11]
    rows = _as_predictions(labels[0], (30 / 40, 30 / 60))
    overflowed = [[1, 0.8, -np.inf, 2.0, np.inf, 9.0], [1, 0.7, 1.0, np.nan, 3.0, 4.0]]
    model = _StubModel([np.concatenate([rows, overflowed])])
    results_file = tmp_path / "results.json"
    with pytest.warns(UserWarning, match=r"2 detections with non-finite box coordinates .* left out of .*results.json"):
        results = predict_all_to_json(
            str(results_file), model, 30, 30, {1: 4}, dataset, batch_size=1, model_mode="inference", verbose=False
        )
    assert results == [{"image_id": 11, "category_id": 4, "score": 0.9, "bbox": [5.0, 5.0, 20.0, 25.0]}]
    assert json.loads(results_file.read_text()) == results
    assert evaluate_coco(str(annotations), str(results_file), verbose=False)["AP"] == pytest.approx(1.0)


def test_coco_crowd_boxes_are_neutral_in_the_voc_evaluation(tmp_path):
    # A person (5..25 x 5..30) and a crowd of people (30..55 x 10..35) in one 40 x 60 image.
    import json

    import cv2

    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((40, 60, 3), np.uint8))
    coco = {
        "images": [{"id": 3, "file_name": "0.png", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 1, "bbox": [5, 5, 20, 25], "iscrowd": 0},
            {"id": 2, "image_id": 3, "category_id": 1, "bbox": [30, 10, 25, 25], "iscrowd": 1},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    scale = (30 / 40, 30 / 60)
    person, crowd = (
        _as_predictions([[1, 5, 5, 25, 30]], scale),
        _as_predictions([[1, 30, 10, 55, 35]], scale, confidence=0.95),
    )

    def evaluate(detections, exclude_crowd=False):
        dataset = DataGenerator(verbose=False)
        dataset.parse_json(
            [str(tmp_path)],
            [str(tmp_path / "instances.json")],
            ground_truth_available=True,
            verbose=False,
            exclude_crowd=exclude_crowd,
        )
        evaluator = Evaluator(_StubModel([detections]), n_classes=1, data_generator=dataset, model_mode="inference")
        return evaluator(30, 30, batch_size=1, verbose=False), evaluator.num_gt_per_class.tolist(), dataset

    # The person found, the crowd not: read as an ordinary box (the original) the crowd is a
    # miss, recall 1/2 and 11-point AP 6/11; neutral, it counts neither way: AP 1.
    mean_ap, num_gt, dataset = evaluate(person)
    assert [n.tolist() for n in dataset.eval_neutral] == [[False, True]] and len(dataset.labels[0]) == 2
    assert num_gt == [0, 1] and mean_ap == pytest.approx(1.0)
    # A detection on the crowd, ranked first, is no false positive either.
    assert evaluate(np.vstack([crowd, person]))[0] == pytest.approx(1.0)
    # Left out (training sets): gone from the labels.
    mean_ap, num_gt, dataset = evaluate(person, exclude_crowd=True)
    assert dataset.labels[0].tolist() == [[1, 5, 5, 25, 30]] and [n.tolist() for n in dataset.eval_neutral] == [[False]]
    assert num_gt == [0, 1] and mean_ap == pytest.approx(1.0)
    # Without the neutral flags, as the original read them: the crowd is a missed box.
    evaluator = Evaluator(_StubModel([person]), n_classes=1, data_generator=evaluate(person)[2], model_mode="inference")
    assert evaluator(30, 30, batch_size=1, verbose=False, ignore_neutral_boxes=False) == pytest.approx(6 / 11)
