"""The original's `misc_utils.tensor_sampling_utils`: re-exports of `ssd_keras.models.weight_sampling`."""

from ssd_keras.models.weight_sampling import (
    SSD300_CLASSIFIER_LAYERS,
    class_channel_indices,
    sample_tensors,
    subsample_classifier_weights,
)
