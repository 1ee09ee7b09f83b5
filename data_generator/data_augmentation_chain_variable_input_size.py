"""The original's `data_generator.data_augmentation_chain_variable_input_size`:
re-exports of `ssd_keras.data.augmentation.variable_input_size`."""

from ssd_keras.data.augmentation.variable_input_size import DataAugmentationVariableInputSize
