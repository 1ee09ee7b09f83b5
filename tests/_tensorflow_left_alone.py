"""Run by test_backends.py in a fresh process under JAX or PyTorch, TensorFlow installed:
after `ssd-keras`' start-up (`leave_tensorflow_unimported`), seeding, saving and loading
a model leave TensorFlow unimported; once imported by its user, Keras sees it again.
Prints a JSON object of what it found.

    KERAS_BACKEND=jax python tests/_tensorflow_left_alone.py WORK_DIR
"""

import json
import os
import sys

from ssd_keras.cli import main

work = sys.argv[1]
os.makedirs(work, exist_ok=True)
# The command line's start-up, then an error before any work: a model file that is not there.
status = main(["predict", "--model-file", os.path.join(work, "absent.keras"), "--out", work, work])

import keras  # noqa: E402

keras.utils.set_random_seed(0)
inputs = keras.Input((4,))
model = keras.Model(inputs, keras.layers.Dense(6)(inputs))
model.compile(optimizer="sgd", loss="mse")
model.save(os.path.join(work, "dense.keras"))
loaded = keras.saving.load_model(os.path.join(work, "dense.keras"))
found = {
    "status": status,
    "backend": keras.backend.backend(),
    "outputs": list(loaded.output.shape[1:]),
    "imported_by_keras": "tensorflow" in sys.modules,
}
from keras.src.utils import module_utils  # noqa: E402

found["available_before"] = module_utils.tensorflow.available
import tensorflow  # noqa: E402, F401

found["available_after_import"] = module_utils.tensorflow.available
print(json.dumps(found))
