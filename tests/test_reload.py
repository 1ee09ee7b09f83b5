"""Saved models load in a new Python process, as a user's next session loads them: with the
original notebooks' ``custom_objects`` dict, and after a plain import of the builders."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT

from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.ssd7 import build_model
from ssd_keras.models.ssd300 import ssd_300

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDERS = {
    "ssd7": (build_model, 64, [0.2, 0.4, 0.6, 0.8, 0.95]),
    "ssd300": (ssd_300, 300, [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]),
}
# SSD512 is made of SSD300's layer classes (its .keras round trip in every mode is in
# test_models.py); reloading it here too would add about 40 s on a 2-core machine and no new class.
MODES = ("training", "inference", "inference_fast")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Every builder in every mode saved to .keras (the training ones compiled with
    SSDLoss, as the notebooks do), with its output on a fixed image."""
    folder = tmp_path_factory.mktemp("saved")
    for name, (builder, size, scales) in BUILDERS.items():
        keras.utils.set_random_seed(0)
        # Near-mean images keep a random network's boxes small enough to decode.
        images = np.random.default_rng(0).uniform(110, 135, (1, size, size, 3)).astype("float32")
        for mode in MODES:
            model = builder((size, size, 3), 2, mode=mode, scales=scales, confidence_thresh=0.2, top_k=10)
            if mode == "training":
                weights = model.get_weights()
                model.compile(optimizer="adam", loss=SSDLoss(neg_pos_ratio=3, alpha=1.0).compute_loss)
            else:
                model.set_weights(weights)
            model.save(str(folder / f"{name}_{mode}.keras"))
            np.savez(folder / f"{name}_{mode}.npz", images=images, expected=model.predict(images, verbose=0))
    return str(folder)


@pytest.mark.slow
def test_ssd300_and_ssd7_in_every_mode_reload_in_a_new_process(saved_models):
    # The original's custom_objects lacked the preprocessing layers ('Could not locate class
    # IdentityLayer'); a plain import of the SSD300 builder lacked L2Normalization. Importing
    # any layer, loss or model module now registers them all. Both ways run at once, each in
    # a new process, on the files saved once above.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    ways = ("custom_objects", "import")
    processes = [
        subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_reload_check.py"), way, saved_models],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE,
        )
        for way in ways
    ]
    for way, process in zip(ways, processes):
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, (way, stderr[-3000:])
        differences = json.loads(stdout.strip().splitlines()[-1])
        assert sorted(differences) == sorted(f"{name}_{mode}" for name in BUILDERS for mode in MODES), way
        assert max(differences.values()) == 0.0, (way, differences)
