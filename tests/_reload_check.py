"""Run by test_reload.py in a fresh Python process: loads every model file in DIR the way
a user's new session would, and prints the largest output difference per file as JSON.

    python tests/_reload_check.py custom_objects DIR   # the original notebooks' custom_objects dict
    python tests/_reload_check.py import DIR           # `import ssd_keras.models.ssd300, ...ssd7`, compile=False
"""

import glob
import json
import os
import sys

import numpy as np

way, folder = sys.argv[1], sys.argv[2]
if way == "custom_objects":
    # The imports and the dict of ssd300_training.ipynb / ssd7_training.ipynb, nothing more.
    from keras import saving

    from ssd_keras.layers.anchor_boxes import AnchorBoxes
    from ssd_keras.layers.decode_detections import DecodeDetections
    from ssd_keras.layers.l2_normalization import L2Normalization
    from ssd_keras.losses.ssd_loss import SSDLoss

    ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
    custom_objects = {
        "AnchorBoxes": AnchorBoxes,
        "L2Normalization": L2Normalization,
        "DecodeDetections": DecodeDetections,
        "compute_loss": ssd_loss.compute_loss,
    }

    def load(path):
        return saving.load_model(path, custom_objects=custom_objects)
else:
    import keras

    import ssd_keras.models.ssd7  # noqa: F401
    import ssd_keras.models.ssd300  # noqa: F401

    def load(path):
        return keras.saving.load_model(path, compile=False)


differences = {}
for path in sorted(glob.glob(os.path.join(folder, "*.keras"))):
    name = os.path.basename(path)[: -len(".keras")]
    images, expected = np.load(os.path.join(folder, name + ".npz")).values()
    model = load(path)
    differences[name] = float(np.max(np.abs(model.predict(images, verbose=0) - expected)))
print(json.dumps(differences))
