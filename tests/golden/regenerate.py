"""Rewrites the golden (layer name, weight shapes) lists of the default models.

Run only on purpose, after checking that a change of layer names or weights is
intended: the lists guard compatibility with the published ssd_keras weight files.

    python tests/golden/regenerate.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import keras  # noqa: E402
from conftest import DEFAULT_MODELS  # noqa: E402


def layer_list(model):
    """(name, weight shapes in loading order) of every layer but the auto-named input."""
    return [
        [layer.name, [list(w.shape) for w in layer.trainable_weights + layer.non_trainable_weights]]
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]


if __name__ == "__main__":
    for name, build in DEFAULT_MODELS.items():
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            rows = [json.dumps(row) for row in layer_list(build())]
            f.write("[\n" + ",\n".join(rows) + "\n]\n")
        print("wrote", name)
