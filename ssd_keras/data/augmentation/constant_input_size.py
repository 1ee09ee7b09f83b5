"""Augmentation for data sets whose images already have the model's input size:
photometric distortions, random translation, random zoom in or out, random flip;
the output keeps the input's size."""

from ssd_keras.data.transforms.base import TransformChain
from ssd_keras.data.transforms.geometric import RandomFlip, RandomScale, RandomTranslate
from ssd_keras.data.transforms.photometric import PhotometricDistortions
from ssd_keras.data.transforms.validation import BoxFilter, ImageValidator
from ssd_keras.utils.rng import as_rng


class DataAugmentationConstantInputSize(TransformChain):
    """With equal chance: photometric distortions, translate, zoom in, flip; or
    photometric distortions (contrast last), zoom out, translate, flip.

    Args:
        random_brightness, random_contrast, random_saturation: ``(lower, upper, prob)``.
        random_hue: ``(max_delta, prob)``.
        random_flip: probability of a horizontal flip.
        random_translate: ``((dy_min, dy_max), (dx_min, dx_max), prob)`` as fractions.
        random_scale: ``(min_factor, max_factor, prob)`` with min < 1 < max.
        n_trials_max, clip_boxes, overlap_criterion, bounds_box_filter, bounds_validator: for the
            translate and scale steps' `BoxFilter` (min area 16) and `ImageValidator`.
        n_boxes_min, background: likewise.
        labels_format, rng: as the other transformations.

    Raises:
        ValueError: unless ``random_scale[0] < 1 < random_scale[1]``.
    """

    def __init__(
        self,
        random_brightness=(-48, 48, 0.5),
        random_contrast=(0.5, 1.8, 0.5),
        random_saturation=(0.5, 1.8, 0.5),
        random_hue=(18, 0.5),
        random_flip=0.5,
        random_translate=((0.03, 0.5), (0.03, 0.5), 0.5),
        random_scale=(0.5, 2.0, 0.5),
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
        if not random_scale[0] < 1 < random_scale[1]:
            raise ValueError(f"Expected random_scale[0] < 1 < random_scale[1]. Received: random_scale={random_scale}")
        self.rng = as_rng(rng)
        self.box_filter = BoxFilter(
            check_overlap=True,
            check_min_area=True,
            check_degenerate=True,
            overlap_criterion=overlap_criterion,
            overlap_bounds=bounds_box_filter,
            min_area=16,
        )
        self.image_validator = ImageValidator(
            overlap_criterion=overlap_criterion, bounds=bounds_validator, n_boxes_min=n_boxes_min
        )
        warp_args = dict(
            clip_boxes=clip_boxes,
            box_filter=self.box_filter,
            image_validator=self.image_validator,
            n_trials_max=n_trials_max,
            background=background,
            rng=self.rng,
        )
        translate = RandomTranslate(
            dy_minmax=random_translate[0], dx_minmax=random_translate[1], prob=random_translate[2], **warp_args
        )
        zoom_in = RandomScale(min_factor=1.0, max_factor=random_scale[1], prob=random_scale[2], **warp_args)
        zoom_out = RandomScale(min_factor=random_scale[0], max_factor=1.0, prob=random_scale[2], **warp_args)
        flip = RandomFlip(dim="horizontal", prob=random_flip, rng=self.rng)
        photometric = PhotometricDistortions(
            random_brightness, random_contrast, random_saturation, random_hue, rng=self.rng
        )
        # PhotometricDistortions itself picks the contrast position; the geometry order
        # differs between the two sequences.
        self.sequences = [[photometric, translate, zoom_in, flip], [photometric, zoom_out, translate, flip]]
        super().__init__(labels_format)
