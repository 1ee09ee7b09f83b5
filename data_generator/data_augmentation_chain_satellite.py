"""The original's `data_generator.data_augmentation_chain_satellite`:
re-exports of `ssd_keras.data.augmentation.satellite`."""

from ssd_keras.data.augmentation.satellite import DataAugmentationSatellite
