"""Augmentation for data sets of varying image sizes: photometric distortions, a random
patch (0.3-2 times the width, aspect ratio 0.5-2), a random flip, and a resize to the
model's input size."""

from ssd_keras.data.transforms.base import TransformChain
from ssd_keras.data.transforms.geometric import RandomFlip, Resize
from ssd_keras.data.transforms.patch_sampling import PatchCoordinateGenerator, RandomPatch
from ssd_keras.data.transforms.photometric import PhotometricDistortions
from ssd_keras.data.transforms.validation import BoxFilter, ImageValidator
from ssd_keras.utils.rng import as_rng


class DataAugmentationVariableInputSize(TransformChain):
    """Photometric distortions, a random patch, a random horizontal flip, a resize to
    (resize_height, resize_width).

    Args:
        resize_height, resize_width: output size.
        random_brightness, random_contrast, random_saturation, random_hue, random_flip:
            as `DataAugmentationConstantInputSize`.
        min_scale, max_scale: patch width as a fraction of the image width.
        min_aspect_ratio, max_aspect_ratio: patch aspect ratio (width / height).
        n_trials_max, clip_boxes, overlap_criterion, bounds_box_filter, bounds_validator: as there.
        n_boxes_min, background, labels_format, rng: as there.
        _before_patch: steps inserted before the patch (`DataAugmentationSatellite`).

    Works with or without labels (the original crashed without them).
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
        min_scale=0.3,
        max_scale=2.0,
        min_aspect_ratio=0.5,
        max_aspect_ratio=2.0,
        n_trials_max=3,
        clip_boxes=True,
        overlap_criterion="area",
        bounds_box_filter=(0.3, 1.0),
        bounds_validator=(0.5, 1.0),
        n_boxes_min=1,
        background=(0, 0, 0),
        labels_format=None,
        rng=None,
        _before_patch=(),
    ):
        self.rng = as_rng(rng)
        photometric = PhotometricDistortions(
            random_brightness, random_contrast, random_saturation, random_hue, rng=self.rng
        )
        generator = PatchCoordinateGenerator(
            must_match="w_ar",
            min_scale=min_scale,
            max_scale=max_scale,
            scale_uniformly=False,
            min_aspect_ratio=min_aspect_ratio,
            max_aspect_ratio=max_aspect_ratio,
            rng=self.rng,
        )
        box_filter_patch = BoxFilter(
            check_overlap=True,
            check_min_area=False,
            check_degenerate=False,
            overlap_criterion=overlap_criterion,
            overlap_bounds=bounds_box_filter,
        )
        validator = ImageValidator(
            overlap_criterion=overlap_criterion, bounds=bounds_validator, n_boxes_min=n_boxes_min
        )
        patch = RandomPatch(
            generator,
            box_filter_patch,
            validator,
            n_trials_max=n_trials_max,
            clip_boxes=clip_boxes,
            prob=1.0,
            background=background,
            can_fail=False,
            rng=self.rng,
        )
        flip = RandomFlip(dim="horizontal", prob=random_flip, rng=self.rng)
        resize = Resize(
            resize_height,
            resize_width,
            box_filter=BoxFilter(check_overlap=False, check_min_area=True, check_degenerate=True, min_area=16),
        )
        self.sequence = [photometric, *_before_patch, patch, flip, resize]
        super().__init__(labels_format)
