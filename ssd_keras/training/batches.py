"""The batches a run trains on: the augmentation of each `augment` choice, the class-id
check of the labels, and an epoch's batches as arrays (`materialize`)."""

import math

import numpy as np

from ssd_keras.errors import ClassIdError
from ssd_keras.training.config import AUGMENTATIONS, check_choice


def transformations(augment, img_height, img_width, background=(0, 0, 0), seed=None):
    """The training transformations of each `augment` choice.

    'ssd': the paper's chain (`SSDDataAugmentation`: photometric distortions, expand,
    IoU-constrained crop, flip, resize); 'constant': resize, then the SSD7 notebook's
    `DataAugmentationConstantInputSize`; 'flip': resize and random horizontal flips;
    'none': resize only.
    """
    from ssd_keras.data.augmentation.constant_input_size import DataAugmentationConstantInputSize
    from ssd_keras.data.augmentation.original_ssd import SSDDataAugmentation
    from ssd_keras.data.transforms.geometric import RandomFlip, Resize
    from ssd_keras.data.transforms.photometric import ConvertTo3Channels

    check_choice("augment", augment, AUGMENTATIONS)
    background = tuple(int(round(b)) for b in np.broadcast_to(np.asarray(background, dtype=float), (3,)))
    if augment == "ssd":
        return [ConvertTo3Channels(), SSDDataAugmentation(img_height, img_width, background=background, rng=seed)]
    base = [ConvertTo3Channels(), Resize(img_height, img_width)]
    if augment == "constant":
        return base + [DataAugmentationConstantInputSize(background=background, rng=seed)]
    if augment == "flip":
        return base + [RandomFlip(dim="horizontal", prob=0.5, rng=seed)]
    return base


def check_class_ids(dataset, n_classes, which="training"):
    """Raises `ClassIdError` naming the first image of `dataset` with a box whose class id is not
    one of the model's, 1 to `n_classes` (found before training, not by the label encoder
    in some batch: "Batch item 0, box 0 has class_id 3")."""
    if dataset.labels is None or not len(dataset.labels):
        return
    column, width = list(dataset.labels_output_format).index("class_id"), len(dataset.labels_output_format)
    ids = [np.asarray(labels, dtype=np.float64).reshape(-1, width)[:, column] for labels in dataset.labels]
    ends = np.cumsum([len(image_ids) for image_ids in ids])
    ids = np.concatenate(ids)
    bad = np.flatnonzero((ids < 1) | (ids > n_classes) | (ids != np.round(ids)))
    if not len(bad):
        return
    image = int(np.searchsorted(ends, bad[0], side="right"))
    box = int(bad[0] - (ends[image - 1] if image else 0))
    name = dataset.filenames[image] if dataset.filenames is not None else f"item {image}"
    raise ClassIdError(
        f"The {which} data: {name}, box {box}, has class id {ids[bad[0]]:g}, but the model has {n_classes} classes "
        f"(ids 1 to {n_classes}); {len(bad)} box(es) in all. Give the class names of the data (--classes), "
        f"or leave those boxes out"
    )


def epoch_arrays(dataset, progress=None, sizes=None):
    """All batches of a `PyDataset`'s epoch as two arrays; `sizes`, a list, gets each
    batch's number of images (fewer than the batch size where images were dropped)."""
    batches = []
    for i in range(len(dataset)):
        batches.append(tuple(np.array(a) for a in dataset[i]))  # copies free worker slots
        if progress:
            progress[0].built()
    if sizes is not None:
        sizes.extend(len(b[0]) for b in batches)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def steps_for(dataset_size, batch_size):
    """Batches in one pass over `dataset_size` images."""
    return math.ceil(dataset_size / batch_size)
