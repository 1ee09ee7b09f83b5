"""End-to-end run of the NumPy core on SSD300's configuration: anchors, encoding, decoding.

Makes ground truth for a few synthetic images, encodes it with `SSDInputEncoder`
(the targets `SSDLoss` trains on), turns the targets into the predictions a perfect
model would make (plus a little noise), decodes them with `decode_detections` and
checks that the boxes come back. Prints what it found and how long each step took.

This is the main job until the SSD7 training demo (train, evaluate mAP, draw boxes)
lands; it needs no data and finishes in seconds.
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.encoding.output_decoder import decode_detections  # noqa: E402

VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


def main():
    rng = np.random.default_rng(0)
    encoder = SSDInputEncoder(
        img_height=300,
        img_width=300,
        n_classes=20,
        predictor_sizes=[(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)],
        scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05],
        aspect_ratios_per_layer=[[1.0, 2.0, 0.5]] + [[1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]] * 3 + [[1.0, 2.0, 0.5]] * 2,
        steps=[8, 16, 32, 64, 100, 300],
        offsets=[0.5] * 6,
        neg_iou_limit=0.5,
    )
    print(f"SSD300 anchors: {encoder.n_boxes_total} (boxes per cell per layer: {encoder.n_boxes})")

    # Three non-overlapping objects per image, on a 3x1 grid of slots.
    labels = []
    for _ in range(4):
        rows = []
        for slot in range(3):
            x0 = slot * 100
            w, h = rng.uniform(40, 95), rng.uniform(60, 280)
            x, y = x0 + rng.uniform(0, 100 - w), rng.uniform(0, 300 - h)
            rows.append([rng.integers(1, 21), x, y, x + w, y + h])
        labels.append(np.array(rows))

    start = time.perf_counter()
    y_true = encoder(labels)
    encode_ms = (time.perf_counter() - start) * 1e3
    positives = int((y_true[..., 1:-12].max(axis=-1) > 0).sum())
    print(f"encoded {len(labels)} images -> targets {y_true.shape}, {positives} positive anchors, {encode_ms:.1f} ms")

    # A perfect model: scores = the one-hot targets, offsets = the targets plus noise.
    y_pred = y_true.copy()
    y_pred[..., :21] = 0.9 * y_true[..., :21] + 0.1 / 21
    y_pred[..., -12:-8] += rng.normal(0, 0.02, y_pred[..., -12:-8].shape).astype(np.float32)

    start = time.perf_counter()
    detections = decode_detections(
        y_pred, confidence_thresh=0.5, iou_threshold=0.45, top_k=200, img_height=300, img_width=300
    )
    decode_ms = (time.perf_counter() - start) * 1e3
    print(f"decoded in {decode_ms:.1f} ms\n")

    worst = 0.0
    for i, (truth, found) in enumerate(zip(labels, detections)):
        print(f"image {i}: {len(truth)} objects, {len(found)} detections")
        for row in truth:
            match = found[np.abs(found[:, 2:] - row[1:]).max(axis=1).argmin()]
            error = np.abs(match[2:] - row[1:]).max()
            worst = max(worst, error)
            print(
                f"  {VOC_CLASSES[int(row[0])]:>12s} truth {np.round(row[1:], 1)} -> "
                f"{VOC_CLASSES[int(match[0])]:>12s} {match[1]:.2f} {np.round(match[2:], 1)}"
            )
    ok = all(len(f) == len(t) for t, f in zip(labels, detections)) and worst < 10
    print(f"\nlargest coordinate error: {worst:.2f} px -> {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
