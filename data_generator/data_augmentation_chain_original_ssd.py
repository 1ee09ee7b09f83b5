"""The original's `data_generator.data_augmentation_chain_original_ssd`:
re-exports of `ssd_keras.data.augmentation.original_ssd`."""

from ssd_keras.data.augmentation.original_ssd import (
    SSDDataAugmentation,
    SSDExpand,
    SSDPhotometricDistortions,
    SSDRandomCrop,
)
