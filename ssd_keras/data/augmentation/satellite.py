"""Augmentation for overhead (satellite) imagery: as `DataAugmentationVariableInputSize`
plus vertical flips and rotations by multiples of 90 degrees, since such images have
no preferred orientation."""

from ssd_keras.data.augmentation.variable_input_size import DataAugmentationVariableInputSize
from ssd_keras.data.transforms.geometric import RandomFlip, RandomRotate
from ssd_keras.utils.rng import as_rng


class DataAugmentationSatellite(DataAugmentationVariableInputSize):
    """Photometric distortions, random vertical flip, random rotation, random patch
    (aspect ratio 0.8-1.25 by default), random horizontal flip, resize.

    Args: as `DataAugmentationVariableInputSize`, plus
        random_rotate: ``(angles, prob)``.
    """

    def __init__(
        self,
        resize_height,
        resize_width,
        random_brightness=(-48, 48, 0.5),
        random_contrast=(0.5, 1.8, 0.5),
        random_saturation=(0.5, 1.8, 0.5),
        random_hue=(18, 0.5),
        random_flip=0.5,
        random_rotate=((90, 180, 270), 0.5),
        min_scale=0.3,
        max_scale=2.0,
        min_aspect_ratio=0.8,
        max_aspect_ratio=1.25,
        n_trials_max=3,
        clip_boxes=True,
        overlap_criterion="area",
        bounds_box_filter=(0.3, 1.0),
        bounds_validator=(0.5, 1.0),
        n_boxes_min=1,
        background=(0, 0, 0),
        labels_format=None,
        rng=None,
    ):
        rng = as_rng(rng)
        before_patch = (
            RandomFlip(dim="vertical", prob=random_flip, rng=rng),
            RandomRotate(angles=random_rotate[0], prob=random_rotate[1], rng=rng),
        )
        super().__init__(
            resize_height,
            resize_width,
            random_brightness,
            random_contrast,
            random_saturation,
            random_hue,
            random_flip,
            min_scale,
            max_scale,
            min_aspect_ratio,
            max_aspect_ratio,
            n_trials_max,
            clip_boxes,
            overlap_criterion,
            bounds_box_filter,
            bounds_validator,
            n_boxes_min,
            background,
            labels_format,
            rng,
            _before_patch=before_patch,
        )
