"""Drawing detections with matplotlib, as the notebooks show them (`ssd_keras.inference.loading.draw_boxes`
draws with OpenCV into image files)."""

import numpy as np


def plot_detections(image, detections, classes, ground_truth=(), threshold=0.5, ax=None):
    """Draws an image with its detections (coloured, labelled) and ground truth (green).

    Args:
        image: (height, width, 3) RGB.
        detections: rows ``[class_id, confidence, xmin, ymin, xmax, ymax]``; those below
            `threshold` are left out, and boxes are clipped to the image (an untrained
            model can predict boxes far outside).
        classes: class names by id, 'background' first.
        ground_truth: rows ``[class_id, xmin, ymin, xmax, ymax]``.
        threshold: minimum confidence drawn.
        ax: a matplotlib axes (default: the current one).
    """
    import matplotlib.pyplot as plt

    colors = plt.cm.hsv(np.linspace(0, 1, len(classes))).tolist()
    ax = ax or plt.gca()
    ax.imshow(image)
    height, width = image.shape[:2]
    for box in ground_truth:
        xmin, ymin, xmax, ymax = box[1:5]
        ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color="#00FF00", fill=False, linewidth=2))
    for box in detections:
        if box[1] < threshold:
            continue
        xmin, xmax = np.clip([box[2], box[4]], 0, width)
        ymin, ymax = np.clip([box[3], box[5]], 0, height)
        color = colors[int(box[0]) % len(colors)]
        ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color=color, fill=False, linewidth=2))
        ax.text(
            xmin,
            ymin,
            f"{classes[int(box[0])]}: {box[1]:.2f}",
            size="x-small",
            color="white",
            bbox={"facecolor": color, "alpha": 1.0},
        )
    ax.axis("off")
