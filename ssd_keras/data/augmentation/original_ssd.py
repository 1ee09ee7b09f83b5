"""The data augmentation of the original SSD (Liu et al. 2016, §2.2 "Data augmentation"):
photometric distortions, a random zoom-out ("expand"), an IoU-constrained random crop,
a horizontal flip and a resize to the input size."""

from ssd_keras.data.transforms.base import TransformChain, copy_labels, result, run_sequence
from ssd_keras.data.transforms.geometric import RandomFlip, ResizeRandomInterp
from ssd_keras.data.transforms.patch_sampling import (
    PatchCoordinateGenerator,
    RandomPatch,
    RandomPatchInf,
    compose_crop_pads,
)
from ssd_keras.data.transforms.photometric import PhotometricDistortions
from ssd_keras.data.transforms.validation import BoundGenerator, BoxFilter, ImageValidator
from ssd_keras.utils.rng import as_rng


class SSDRandomCrop(TransformChain):
    """SSD's random crop: with probability 0.857 (6 of 7 choices in the paper), a patch
    of 0.3-1.0 of each side with aspect ratio 0.5-2 whose IoU with at least one box
    exceeds a minimum drawn from {none, 0.1, 0.3, 0.5, 0.7, 0.9}; boxes whose centre
    leaves the patch are dropped. Otherwise the image is kept whole."""

    def __init__(self, labels_format=None, rng=None):
        self.rng = as_rng(rng)
        bounds = BoundGenerator(
            ((None, None), (0.1, None), (0.3, None), (0.5, None), (0.7, None), (0.9, None)), rng=self.rng
        )
        generator = PatchCoordinateGenerator(
            must_match="h_w",
            min_scale=0.3,
            max_scale=1.0,
            scale_uniformly=False,
            min_aspect_ratio=0.5,
            max_aspect_ratio=2.0,
            rng=self.rng,
        )
        box_filter = BoxFilter(
            check_overlap=True, check_min_area=False, check_degenerate=False, overlap_criterion="center_point"
        )
        validator = ImageValidator(overlap_criterion="iou", n_boxes_min=1, border_pixels="half")
        self.random_crop = RandomPatchInf(
            generator, box_filter, validator, bounds, n_trials_max=50, clip_boxes=True, prob=0.857, rng=self.rng
        )
        self.sequence = [self.random_crop]
        super().__init__(labels_format)


class SSDExpand(TransformChain):
    """SSD's zoom-out: with probability 0.5, the image on a canvas 1-4 times its size
    filled with `background` (the mean colour), at a random position."""

    def __init__(self, background=(123, 117, 104), labels_format=None, rng=None):
        self.rng = as_rng(rng)
        generator = PatchCoordinateGenerator(
            must_match="h_w", min_scale=1.0, max_scale=4.0, scale_uniformly=True, rng=self.rng
        )
        self.expand = RandomPatch(
            generator, n_trials_max=1, clip_boxes=False, prob=0.5, background=background, rng=self.rng
        )
        self.sequence = [self.expand]
        super().__init__(labels_format)


class SSDPhotometricDistortions(PhotometricDistortions):
    """Random brightness (+-32), contrast (0.5-1.5), saturation (0.5-1.5) and hue (+-18),
    each with probability 0.5, contrast first or last with equal chance. Returns uint8."""

    def __init__(self, rng=None):
        super().__init__((-32, 32, 0.5), (0.5, 1.5, 0.5), (0.5, 1.5, 0.5), (18, 0.5), channel_swap_prob=0.0, rng=rng)


class SSDDataAugmentation(TransformChain):
    """The full SSD training augmentation, ending in a (img_height, img_width) image.

    Args:
        img_height, img_width: the model's input size.
        background: fill colour of the zoom-out canvas (the dataset's mean colour).
        labels_format: column layout of the labels.
        rng: seed or `numpy.random.Generator` shared by every random step.

    Call arguments:
        image: HxWx3 uint8 RGB.
        labels: (k, 5) array, or None for images without labels.
        return_inverter: also return a function mapping decoded predictions on the
            output back to the input image.
    """

    def __init__(self, img_height=300, img_width=300, background=(123, 117, 104), labels_format=None, rng=None):
        self.rng = as_rng(rng)
        self.photometric_distortions = SSDPhotometricDistortions(rng=self.rng)
        self.expand = SSDExpand(background=background, rng=self.rng)
        self.random_crop = SSDRandomCrop(rng=self.rng)
        self.random_flip = RandomFlip(dim="horizontal", prob=0.5, rng=self.rng)
        degenerate = BoxFilter(check_overlap=False, check_min_area=False, check_degenerate=True)
        self.resize = ResizeRandomInterp(img_height, img_width, box_filter=degenerate, rng=self.rng)
        self.sequence = [self.photometric_distortions, self.expand, self.random_crop, self.random_flip, self.resize]
        super().__init__(labels_format)

    def __call__(self, image, labels=None, return_inverter=False):
        # The expand step's canvas (up to 16 times the image) is never built: the crop
        # is chosen on the canvas's size and both are done as one CropPad on the image.
        had_labels = labels is not None
        labels = copy_labels(labels)
        image = self.photometric_distortions(image)
        height, width = image.shape[:2]
        expand = self.expand.expand.choose(height, width, labels)
        expand = None if expand == "identity" else expand
        canvas_labels = labels if expand is None or labels is None else expand.move_labels(labels)
        canvas_size = (height, width) if expand is None else (expand.patch_height, expand.patch_width)
        crop = self.random_crop.random_crop.choose(*canvas_size, canvas_labels)
        patch = compose_crop_pads(expand, None if crop == "identity" else crop)
        inverters = []
        if patch is not None:
            image, labels, inverter = run_sequence([patch], image, labels, return_inverter=True)
            inverters += inverter
        image, labels, tail = run_sequence([self.random_flip, self.resize], image, labels, return_inverter)
        inverters = tail + inverters  # last transform first

        def inverter(predictions):
            for invert in inverters:
                predictions = invert(predictions)
            return predictions

        return result(image, labels if had_labels else None, inverter, return_inverter)
