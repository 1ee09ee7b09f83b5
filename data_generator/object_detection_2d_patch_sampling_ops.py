"""The original's `data_generator.object_detection_2d_patch_sampling_ops`:
re-exports of `ssd_keras.data.transforms.patch_sampling`."""

from ssd_keras.data.transforms.patch_sampling import (
    MUST_MATCH,
    Crop,
    CropPad,
    Pad,
    PatchCoordinateGenerator,
    RandomMaxCropFixedAR,
    RandomPadFixedAR,
    RandomPatch,
    RandomPatchInf,
    compose_crop_pads,
)
