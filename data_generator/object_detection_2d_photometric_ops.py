"""The original's `data_generator.object_detection_2d_photometric_ops`:
re-exports of `ssd_keras.data.transforms.photometric`."""

from ssd_keras.data.transforms.photometric import (
    Brightness,
    ChannelSwap,
    Contrast,
    ConvertColor,
    ConvertDataType,
    ConvertTo3Channels,
    Gamma,
    HistogramEqualization,
    Hue,
    PhotometricDistortions,
    RandomBrightness,
    RandomChannelSwap,
    RandomContrast,
    RandomGamma,
    RandomHistogramEqualization,
    RandomHue,
    RandomSaturation,
    Saturation,
)
