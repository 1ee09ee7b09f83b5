"""Draws the documentation's pictures from a demo run: detections, the loss curve, and
precision-recall curves.

    python docs/make_figures.py                      # runs the demo into demo_output first if needed
    python docs/make_figures.py --demo-dir DIR --out docs/images

Writes ``detections.png`` (held-out test images with the trained SSD7's detections in colour
and the ground truth in white), ``loss_curve.png`` (training loss and learning rate per
epoch, from ``training_log.csv``) and ``pr_curves.png`` (precision against recall per class
on the test split, with each class's AP).
"""

import argparse
import csv
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_SHOWN = 4
TILE = 200  # pixels across each image in detections.png


def _demo(demo_dir, smoke):
    """The demo's outputs: runs it into `demo_dir` unless its model is there already."""
    from ssd_keras.demo import run_demo

    if not os.path.isfile(os.path.join(demo_dir, "ssd7_shapes.keras")):
        run_demo(demo_dir, smoke=smoke, verbose=False)
    from ssd_keras.data.loading import load_dataset
    from ssd_keras.data.synthetic_shapes import SHAPE_CLASSES

    shapes = os.path.join(demo_dir, "shapes")
    test = load_dataset(
        "voc",
        [os.path.join(shapes, "JPEGImages")],
        [os.path.join(shapes, "ImageSets", "Main", "test.txt")],
        [os.path.join(shapes, "Annotations")],
        classes=list(SHAPE_CLASSES),
        verbose=False,
    )
    return test, list(SHAPE_CLASSES)


def draw_detections(model, test, classes, path):
    """The first four test images with two or more objects, side by side, each with its
    detections and ground truth."""
    import cv2
    import numpy as np

    from ssd_keras.data.transforms.geometric import Resize
    from ssd_keras.inference.loading import add_decoding, draw_boxes

    height, width = model.inputs[0].shape[1:3]
    detector = add_decoding(model, confidence_thresh=0.5)
    tiles = []
    shown = [i for i in range(test.dataset_size) if len(test.labels[i]) >= 2][:N_SHOWN]  # images with a few objects
    for i in shown:
        image = test._image(i)
        resized, inverter = Resize(height, width)(image, return_inverter=True)
        rows = np.asarray(detector.predict_on_batch(resized[None]))[0]
        rows = inverter(rows[rows[:, 1] > 0])
        tile = draw_boxes(image, rows, test.labels[i], classes)
        tiles.append(
            cv2.resize(tile, (TILE, int(round(TILE * tile.shape[0] / tile.shape[1]))), interpolation=cv2.INTER_AREA)
        )
    tallest = max(tile.shape[0] for tile in tiles)
    tiles = [
        cv2.copyMakeBorder(t, 0, tallest - t.shape[0], 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for t in tiles
    ]
    from PIL import Image  # matplotlib's dependency: a palette PNG is a third of the size

    rgb = cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_BGR2RGB)
    Image.fromarray(rgb).quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)


def _numbers(values):
    """Whether every value reads as a number (CSVLogger writes 'NA' for a loss it did not see)."""
    try:
        return all(float(value) == float(value) for value in values)
    except (TypeError, ValueError):
        return False


def plot_loss(log_path, path):
    """The loss per epoch (and the learning rate, where the log has it)."""
    import matplotlib.pyplot as plt

    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(epochs, [float(row["loss"]) for row in rows], marker="o", label="training loss")
    if rows and _numbers(row.get("val_loss") for row in rows):
        ax.plot(epochs, [float(row["val_loss"]) for row in rows], marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("SSD loss")
    if rows and "learning_rate" in rows[0]:
        lr = ax.twinx()
        lr.step(epochs, [float(row["learning_rate"]) for row in rows], where="post", color="grey", linestyle="--")
        lr.set_ylabel("learning rate", color="grey")
    ax.legend(loc="upper right")
    ax.set_title("SSD7 on the synthetic shapes (the demo)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_precision_recall(model, test, classes, path):
    """Precision against recall per class on the test split (VOC rules), with the APs."""
    import matplotlib.pyplot as plt

    from ssd_keras.evaluation.voc import Evaluator
    from ssd_keras.inference.loading import add_decoding

    height, width = model.inputs[0].shape[1:3]
    evaluator = Evaluator(add_decoding(model, confidence_thresh=0.01), len(classes) - 1, test)
    mean_ap, aps, precisions, recalls = evaluator(
        height,
        width,
        batch_size=16,
        return_precisions=True,
        return_recalls=True,
        return_average_precisions=True,
        verbose=False,
    )
    figure, ax = plt.subplots(figsize=(4.5, 3.8))
    for k in range(1, len(classes)):
        ax.plot(recalls[k], precisions[k], label=f"{classes[k]} (AP {aps[k]:.3f})")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Held-out test split, mAP {mean_ap:.3f}")
    ax.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    """Runs the demo if needed and writes the three pictures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--demo-dir", default=os.path.join(ROOT, "demo_output"), help="a demo's --out (default: demo_output)"
    )
    parser.add_argument(
        "--out", default=os.path.join(ROOT, "docs", "images"), help="where the PNGs go (default: docs/images)"
    )
    parser.add_argument("--smoke", action="store_true", help="a smoke demo, if one has to run (for the tests)")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import keras

    import ssd_keras.layers  # noqa: F401  (registers the custom objects for loading)

    test, classes = _demo(args.demo_dir, args.smoke)
    model = keras.saving.load_model(os.path.join(args.demo_dir, "model.keras"))
    os.makedirs(args.out, exist_ok=True)
    draw_detections(model, test, classes, os.path.join(args.out, "detections.png"))
    plot_loss(os.path.join(args.demo_dir, "training_log.csv"), os.path.join(args.out, "loss_curve.png"))
    plot_precision_recall(model, test, classes, os.path.join(args.out, "pr_curves.png"))
    print(f"Wrote detections.png, loss_curve.png and pr_curves.png in {args.out}")


if __name__ == "__main__":
    main()
