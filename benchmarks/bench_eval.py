"""Benchmark of the VOC evaluation: matching and AP for 5,000 images, 20 classes,
100 detections per image (500,000 detections), as `Evaluator` does after prediction.

Ground truth: 1-6 boxes per image (10 % difficult). Detections: noisy copies of the
ground truth (some twice) plus false alarms, 100 per image in all. Timed:
`get_num_gt_per_class`, `match_predictions`, `compute_precision_recall`,
`compute_average_precisions` and `compute_mean_average_precision`. Prints the median
of repeated runs.

    python benchmarks/bench_eval.py [--repeats 3]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import results  # noqa: E402
from ssd_keras.data.generator import DataGenerator  # noqa: E402
from ssd_keras.evaluation.voc import Evaluator  # noqa: E402


def make_case(rng, n_images=5000, n_classes=20, per_image=100):
    labels, neutral = [], []
    results = [[] for _ in range(n_classes + 1)]
    for image in range(n_images):
        k = rng.integers(1, 7)
        xy = rng.uniform(0, 400, (k, 2))
        boxes = np.column_stack([rng.integers(1, n_classes + 1, k), xy, xy + rng.uniform(20, 200, (k, 2))])
        labels.append(boxes)
        neutral.append(rng.uniform(size=k) < 0.1)
        n_true = min(per_image, 2 * k)
        picks = boxes[rng.integers(0, k, n_true)]
        noise = rng.normal(0, 8, (n_true, 4))
        fake_xy = rng.uniform(0, 400, (per_image - n_true, 2))
        fakes = np.column_stack(
            [
                rng.integers(1, n_classes + 1, per_image - n_true),
                fake_xy,
                fake_xy + rng.uniform(20, 200, (per_image - n_true, 2)),
            ]
        )
        rows = np.vstack([np.column_stack([picks[:, :1], picks[:, 1:] + noise]), fakes])
        confidences = rng.uniform(size=per_image)
        for (c, *box), conf in zip(rows, confidences):
            results[int(c)].append((image, float(conf), *box))
    dataset = DataGenerator(
        filenames=[f"{i}.jpg" for i in range(n_images)],
        labels=labels,
        image_ids=list(range(n_images)),
        eval_neutral=neutral,
        verbose=False,
    )
    return dataset, results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    results.add_argument(parser)
    args = parser.parse_args()
    dataset, predictions = make_case(np.random.default_rng(0))
    times = []
    for _ in range(args.repeats):
        evaluator = Evaluator(None, 20, dataset)
        evaluator.prediction_results = predictions
        start = time.perf_counter()
        evaluator.get_num_gt_per_class(verbose=False)
        evaluator.match_predictions(verbose=False)
        evaluator.compute_precision_recall(verbose=False)
        evaluator.compute_average_precisions(verbose=False)
        mean_ap = evaluator.compute_mean_average_precision()
        times.append(time.perf_counter() - start)
    print(
        f"VOC matching + AP, 5000 images x 20 classes x 100 detections: median {np.median(times):.2f} s (mAP "
        f"{mean_ap:.3f})"
    )
    results.save(
        args,
        "bench_eval",
        "Pascal VOC matching and AP, 5,000 images x 20 classes x 100 detections",
        ["benchmark", "median s"],
        [["match, precision-recall, AP, mAP of 500,000 detections", round(float(np.median(times)), 2)]],
        f"median of {args.repeats} runs",
    )


if __name__ == "__main__":
    main()
