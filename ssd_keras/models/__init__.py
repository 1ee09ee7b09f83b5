"""The models: the SSD300, SSD512 and SSD7 builders, their presets, model files and weights.

This package imports no Keras by itself (the command line reads model files with
`ssd_keras.models.files` before Keras starts); the builder modules (`ssd300`, `ssd512`,
`ssd7`) import it, and with it register every custom layer and the loss, so that saved
models load in a new process (see `ssd_keras.layers`).
"""
