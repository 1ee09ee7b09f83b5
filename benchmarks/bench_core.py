"""Benchmarks of the NumPy core: SSDInputEncoder, decode_detections, decode_detections_fast.

Prints the median (and quartiles) of repeated runs in milliseconds. Run with
``make bench`` or ``python benchmarks/bench_core.py [--repeats N]``.

Inputs (seeded):
* encoder: SSD300 Pascal VOC configuration (20 classes, 8732 anchors, the notebook's
  scales, steps and ``neg_iou_limit=0.5``); batches of 32 images with 1-7 boxes each,
  boxes of scale 0.05-0.9 of the image side and aspect ratio 1/3-3 (log-uniform),
  like Pascal VOC's.
* decoders: a batch of 8 SSD300 predictions (8732 x 33). Class scores are the softmax
  of N(0, 1) logits, with some anchors given a confident object class; every class
  of almost every anchor then clears confidence_thresh=0.01, the worst case for
  `decode_detections` (an untrained or uncertain model looks like this).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import results  # noqa: E402
from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.encoding.output_decoder import decode_detections, decode_detections_fast  # noqa: E402
from ssd_keras.models import presets  # noqa: E402

# The SSD300 Pascal VOC configuration of the notebooks (`ssd_keras.models.presets`).
SSD300_VOC = presets.encoder_kwargs("ssd300_voc")


def random_labels(rng, batch_size, n_classes=20, size=300, max_boxes=7):
    """Per image 1..max_boxes boxes (class_id, xmin, ymin, xmax, ymax), VOC-like sizes."""
    labels = []
    for _ in range(batch_size):
        k = rng.integers(1, max_boxes + 1)
        scale = rng.uniform(0.05, 0.9, k) * size
        ratio = np.exp(rng.uniform(np.log(1 / 3), np.log(3), k))
        w = np.minimum(scale * np.sqrt(ratio), size - 2)
        h = np.minimum(scale / np.sqrt(ratio), size - 2)
        xmin = rng.uniform(0, size - w)
        ymin = rng.uniform(0, size - h)
        labels.append(np.column_stack([rng.integers(1, n_classes + 1, k), xmin, ymin, xmin + w, ymin + h]))
    return labels


def random_predictions(rng, encoder, batch_size):
    """Model-like output (batch, n_anchors, n_classes + 1 + 12) for the decoders."""
    y_true = encoder(random_labels(rng, batch_size))
    n_classes = encoder.n_classes
    logits = rng.normal(0.0, 1.0, y_true[..., :n_classes].shape)
    logits += 6.0 * y_true[..., :n_classes]  # matched anchors are confident about their class
    scores = np.exp(logits).astype(np.float32)
    scores /= scores.sum(axis=-1, keepdims=True)
    y_pred = y_true.copy()  # float32, like a Keras model's output
    y_pred[..., :n_classes] = scores
    y_pred[..., -12:-8] += rng.normal(0.0, 0.1, y_pred[..., -12:-8].shape).astype(np.float32)
    return y_pred


def run_times(fn, repeats, warmup=0):
    """Seconds taken by each of `repeats` calls of `fn()`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times)


def timed(fn, inputs, repeats):
    times = []
    for i in range(repeats):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        result = fn(x)
        times.append(time.perf_counter() - start)
        del result
    return np.percentile(np.array(times) * 1e3, [25, 50, 75])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per benchmark (default 50)")
    results.add_argument(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    encoder = SSDInputEncoder(**SSD300_VOC)
    label_batches = [random_labels(rng, 32) for _ in range(10)]
    predictions = [random_predictions(rng, encoder, 8) for _ in range(3)]
    for warmup in label_batches[:3]:
        encoder(warmup)

    rows = [
        ("SSDInputEncoder, SSD300, batch 32, 1-7 boxes", 10, lambda x: encoder(x), label_batches),
        (
            "decode_detections, batch 8, conf 0.01",
            100,
            lambda y: decode_detections(
                y, confidence_thresh=0.01, iou_threshold=0.45, top_k=200, img_height=300, img_width=300
            ),
            predictions,
        ),
        (
            "decode_detections_fast, batch 8, conf 0.5",
            10,
            lambda y: decode_detections_fast(
                y, confidence_thresh=0.5, iou_threshold=0.45, img_height=300, img_width=300
            ),
            predictions,
        ),
    ]
    print(f"{'benchmark':48s} {'median ms':>10s} {'p25':>8s} {'p75':>8s} {'goal ms':>8s}")
    table = []
    for name, goal, fn, inputs in rows:
        p25, p50, p75 = timed(fn, inputs, args.repeats)
        print(f"{name:48s} {p50:10.2f} {p25:8.2f} {p75:8.2f} {goal:8d}")
        table.append([name, round(p50, 2), round(p25, 2), round(p75, 2), goal])
    results.save(
        args,
        "bench_core",
        "The NumPy core: encoder and decoders, SSD300 Pascal VOC configuration",
        ["benchmark", "median ms", "p25 ms", "p75 ms", "goal ms"],
        table,
        f"medians of {args.repeats} runs; seeded inputs (see the script's docstring)",
    )


if __name__ == "__main__":
    main()
