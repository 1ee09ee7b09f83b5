"""The original's `data_generator.object_detection_2d_misc_utils`: re-exports of `ssd_keras.data.transforms.inverse`."""

from ssd_keras.data.transforms.inverse import apply_inverse_transforms
