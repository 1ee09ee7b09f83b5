"""A synthetic object-detection data set in the Pascal VOC layout: shapes on textured backgrounds.

It is the default data of the demo (``make demo``, ``ssd-keras demo``), the notebooks'
smoke configuration and the tests: no download, a few seconds to write, and a task
that a small SSD7 learns in minutes on a CPU while still exercising everything a real
VOC set does (varying image sizes, several objects per image that overlap and occlude
each other, objects cut by the image border flagged ``truncated``, tiny objects
flagged ``difficult``, a trainval and a test split).

The layout is the one `DataGenerator.parse_xml` reads::

    root/
        JPEGImages/000001.jpg ...
        Annotations/000001.xml ...       (VOC XML: size, objects with bndbox, difficult, truncated)
        ImageSets/Main/trainval.txt      (one image id per line)
        ImageSets/Main/test.txt
        classes.txt                      (the class names, 'background' first)

Box coordinates are pixel edges: a shape drawn over the pixel columns ``x0 .. x1``
(inclusive) gets ``xmin = x0`` and ``xmax = x1 + 1``, so ``xmax - xmin`` is its width in
pixels. Truncated objects' boxes are clipped to the image.

Examples:
    >>> from ssd_keras.data import DataGenerator
    >>> info = make_shapes_dataset('data/shapes', n_trainval=6, n_test=2, seed=0, verbose=False)
    >>> dataset = DataGenerator(verbose=False)
    >>> dataset.parse_xml(images_dirs=[info['images_dir']], image_set_filenames=[info['trainval']],
    ...                   annotations_dirs=[info['annotations_dir']], classes=info['classes'], verbose=False)
    >>> dataset.dataset_size, info['classes']
    (6, ['background', 'circle', 'rectangle', 'triangle'])
"""

import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np
from tqdm.auto import tqdm

SHAPE_CLASSES = ("background", "circle", "rectangle", "triangle")

# Object size, as a fraction of the image's shorter side, and the size under which an
# object is flagged difficult (so the evaluation ignores it, as the VOC devkit does).
_SIZE_RANGE = (0.18, 0.5)
_SMALL_SIZE_RANGE = (0.05, 0.09)
_DIFFICULT_BELOW = 0.1
_MAX_IOU = 0.35  # new objects overlap earlier ones by at most this IoU...
_MAX_OCCLUSION = 0.5  # ...and hide at most this fraction of an earlier object's box


def _background(rng, height, width):
    """A low-saturation texture: a colour gradient, noise, blotches and thin lines."""
    base = rng.uniform(60, 190, size=3)
    tilt = rng.uniform(-50, 50, size=(2, 3))
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    image = base + ys * tilt[0] + xs * tilt[1]
    # Low-frequency blotches: coarse noise blown up.
    coarse = rng.normal(0, 18, size=(max(2, height // 24), max(2, width // 24), 1)).astype(np.float32)
    image = image + cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    image = image + rng.normal(0, rng.uniform(4, 12), size=(height, width, 1))
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):  # distractor lines, thinner and duller than any shape
        colour = tuple(int(c) for c in np.clip(base + rng.normal(0, 35, 3), 0, 255))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, p1, p2, colour, 1, cv2.LINE_AA)
    return image


def _shape_colour(rng):
    """A saturated colour: hue anywhere, so colour tells nothing about the class."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(120, 256)]]], dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _draw(image, mask, class_name, x0, y0, w, h, colour):
    """Draws a filled shape in the box (x0, y0, w, h) onto `image` and `mask`."""
    if class_name == "circle":
        # An ellipse that fills the box; circles proper when w == h.
        centre = (x0 + (w - 1) / 2.0, y0 + (h - 1) / 2.0)
        args = (((centre[0], centre[1]), (float(w), float(h)), 0.0),)
        cv2.ellipse(image, *args, colour, -1, cv2.LINE_AA)
        cv2.ellipse(mask, *args, 1, -1)
    elif class_name == "rectangle":
        cv2.rectangle(image, (x0, y0), (x0 + w - 1, y0 + h - 1), colour, -1)
        cv2.rectangle(mask, (x0, y0), (x0 + w - 1, y0 + h - 1), 1, -1)
    else:  # triangle, apex up
        points = np.array([[x0 + (w - 1) // 2, y0], [x0, y0 + h - 1], [x0 + w - 1, y0 + h - 1]], dtype=np.int32)
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA)
        cv2.fillPoly(mask, [points], 1)


def _box_iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / area_b


def make_image(
    rng, classes=SHAPE_CLASSES, size_range=((160, 256), (160, 320)), max_objects=4, truncation_prob=0.15, small_prob=0.1
):
    """Draws one image and its objects.

    Args:
        rng: a `numpy.random.Generator`.
        classes: class names, 'background' first; every other name must be one of
            'circle', 'rectangle', 'triangle'.
        size_range: ``((min_height, max_height), (min_width, max_width))`` in pixels.
        max_objects: at most this many objects (at least one).
        truncation_prob: chance that an object is placed partly outside the image.
        small_prob: chance that an object is tiny (and flagged difficult).

    Returns:
        ``(image, objects)``: a BGR uint8 image and a list of dicts with keys 'name',
        'xmin', 'ymin', 'xmax', 'ymax' (pixel edges, inside the image), 'difficult',
        'truncated'. Later objects are drawn over earlier ones.
    """
    unknown = set(classes[1:]) - {"circle", "rectangle", "triangle"}
    if unknown:
        raise ValueError(
            "Expected `classes` to name only 'circle', 'rectangle' and 'triangle' after 'background'. Received: "
            f"{sorted(unknown)}"
        )
    height = int(rng.integers(size_range[0][0], size_range[0][1] + 1))
    width = int(rng.integers(size_range[1][0], size_range[1][1] + 1))
    image = _background(rng, height, width)
    objects = []
    n_objects = int(rng.integers(1, max_objects + 1))
    short = min(height, width)
    for _ in range(20 * n_objects):  # rejection sampling for the overlap limits
        if len(objects) == n_objects:
            break
        name = classes[int(rng.integers(1, len(classes)))]
        small = rng.random() < small_prob
        side = rng.uniform(*(_SMALL_SIZE_RANGE if small else _SIZE_RANGE)) * short
        aspect = 1.0 if name == "circle" and rng.random() < 0.5 else rng.uniform(0.6, 1.6)
        w = max(6, int(round(side * np.sqrt(aspect))))
        h = max(6, int(round(side / np.sqrt(aspect))))
        if not small and rng.random() < truncation_prob:  # up to 40% of the shape outside
            x0 = int(rng.integers(-int(0.4 * w), width - int(0.6 * w)))
            y0 = int(rng.integers(-int(0.4 * h), height - int(0.6 * h)))
        else:
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
        mask = np.zeros((height, width), np.uint8)
        scratch = image.copy()
        _draw(scratch, mask, name, x0, y0, w, h, _shape_colour(rng))
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        if any(
            iou > _MAX_IOU or hidden > _MAX_OCCLUSION
            for iou, hidden in (_box_iou(box, (o["xmin"], o["ymin"], o["xmax"], o["ymax"])) for o in objects)
        ):
            continue
        truncated = x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height
        difficult = max(box[2] - box[0], box[3] - box[1]) < _DIFFICULT_BELOW * short
        image = scratch
        objects.append(
            dict(
                name=name,
                xmin=box[0],
                ymin=box[1],
                xmax=box[2],
                ymax=box[3],
                difficult=int(difficult),
                truncated=int(truncated),
            )
        )
    return image, objects


def _annotation_xml(image_id, height, width, objects):
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for obj in objects:
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj["name"]
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = str(obj["truncated"])
        ET.SubElement(node, "difficult").text = str(obj["difficult"])
        box = ET.SubElement(node, "bndbox")
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(box, tag).text = str(obj[tag])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def make_shapes_dataset(
    root,
    n_trainval=600,
    n_test=120,
    seed=0,
    classes=SHAPE_CLASSES,
    size_range=((160, 256), (160, 320)),
    max_objects=4,
    jpeg_quality=95,
    verbose=True,
):
    """Writes the synthetic data set under `root` (see the module docstring).

    The same arguments always give the same files. An existing data set with the same
    arguments is kept (its ``dataset.txt`` records them), so calling this again is cheap.

    Args:
        root: output directory; created if needed.
        n_trainval, n_test: images in the two splits (ids 000001... run on across them).
        seed: the seed of everything random.
        classes, size_range, max_objects: as `make_image`.
        jpeg_quality: JPEG quality of the written images.
        verbose: show a progress bar.

    Returns:
        A dict with 'root', 'images_dir', 'annotations_dir', 'trainval', 'test' (the
        image-set files) and 'classes' (a list, 'background' first).

    Raises:
        ValueError: for negative sizes or unknown class names.
    """
    if n_trainval < 0 or n_test < 0:
        raise ValueError(f"Expected non-negative split sizes. Received: n_trainval={n_trainval}, n_test={n_test}")
    if not classes or classes[0] != "background":
        raise ValueError(f"Expected `classes` to start with 'background'. Received: classes={classes}")
    root = os.path.abspath(root)
    paths = dict(
        root=root,
        images_dir=os.path.join(root, "JPEGImages"),
        annotations_dir=os.path.join(root, "Annotations"),
        trainval=os.path.join(root, "ImageSets", "Main", "trainval.txt"),
        test=os.path.join(root, "ImageSets", "Main", "test.txt"),
        classes=list(classes),
    )
    signature = repr(
        dict(
            n_trainval=n_trainval,
            n_test=n_test,
            seed=seed,
            classes=list(classes),
            size_range=size_range,
            max_objects=max_objects,
            jpeg_quality=jpeg_quality,
        )
    )
    stamp = os.path.join(root, "dataset.txt")
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            if f.read() == signature:
                return paths
    for key in ("images_dir", "annotations_dir"):
        os.makedirs(paths[key], exist_ok=True)
    os.makedirs(os.path.dirname(paths["trainval"]), exist_ok=True)
    if os.path.exists(stamp):
        os.remove(stamp)  # incomplete until the new stamp is written
    rng = np.random.default_rng(seed)
    ids = [f"{k:06d}" for k in range(1, n_trainval + n_test + 1)]
    for image_id in tqdm(ids, desc="Writing the shapes data set", disable=not verbose):
        image, objects = make_image(rng, classes, size_range, max_objects)
        cv2.imwrite(
            os.path.join(paths["images_dir"], f"{image_id}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        )
        with open(os.path.join(paths["annotations_dir"], f"{image_id}.xml"), "w", encoding="utf-8") as f:
            f.write(_annotation_xml(image_id, image.shape[0], image.shape[1], objects))
    for key, split in (("trainval", ids[:n_trainval]), ("test", ids[n_trainval:])):
        with open(paths[key], "w", encoding="utf-8") as f:
            f.write("".join(f"{image_id}\n" for image_id in split))
    with open(os.path.join(root, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classes))
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(signature)
    return paths
