"""Run by test_backends.py once per backend: ``save DIR`` writes this backend's SSD7 in
inference mode (decoding included) with its output on fixed images;
``load DIR`` loads every backend's files and prints the largest differences as JSON."""

import glob
import json
import os
import sys

import keras
import numpy as np

from misc_utils.backend_utils import BACKENDS
from models.keras_ssd7 import build_model

command, folder = sys.argv[1], sys.argv[2]
backend = keras.backend.backend()
# Near-mean images keep a random network's boxes small enough to decode.
images = np.random.default_rng(0).uniform(110, 145, (2, 64, 64, 3)).astype("float32")

if command == "save":
    keras.utils.set_random_seed(0)
    # The inference mode holds every custom layer (test_models round-trips each mode on each backend).
    model = build_model((64, 64, 3), 3, mode="inference", scales=[0.2, 0.4, 0.6, 0.8, 0.95], subtract_mean=127.5,
                        divide_by_stddev=127.5, confidence_thresh=0.2, top_k=10)
    model.save(os.path.join(folder, f"{backend}_inference.keras"))
    np.save(os.path.join(folder, f"{backend}_inference.npy"), model.predict(images, verbose=0))
    print("saved")
else:
    differences = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.keras"))):
        name = os.path.basename(path)[:-len(".keras")]
        assert name.split("_")[0] in BACKENDS
        out = keras.saving.load_model(path).predict(images, verbose=0)
        expected = np.load(os.path.join(folder, name + ".npy"))
        assert out.shape == expected.shape, (name, out.shape, expected.shape)
        assert (expected[..., 1] > 0).sum() > 0, f"{name}: nothing detected"  # the same detections: ids, scores, boxes
        differences[name] = float(np.max(np.abs(out - expected)))
    print(json.dumps(differences))
