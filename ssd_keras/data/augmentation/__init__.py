"""The original's augmentation chains: `original_ssd` (`SSDDataAugmentation`, the paper's),
`constant_input_size` and `variable_input_size` (the SSD7 notebook's), `satellite`."""
