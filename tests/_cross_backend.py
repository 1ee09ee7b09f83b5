"""Run by test_backends.py in one process per backend, all at once: each writes its
backend's SSD7 in inference mode (decoding included) with its output on fixed images, and
under PyTorch a training-mode SSD7 after one SGD step (a checkpoint, optimizer state
included: Keras names its PyTorch subclass of SGD in it); then, once every backend has
written its files, it loads every backend's inference files and prints the largest
differences as JSON, and under the other backends trains the PyTorch checkpoint one step
further.

    KERAS_BACKEND=jax python tests/_cross_backend.py DIR tensorflow,jax,torch
"""

import glob
import json
import os
import sys
import time

from ssd_keras.utils.backend import leave_tensorflow_unimported

leave_tensorflow_unimported()  # as ssd-keras does: under JAX and PyTorch Keras would import TensorFlow to save

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ssd_keras.encoding.input_encoder import SSDInputEncoder  # noqa: E402
from ssd_keras.losses.ssd_loss import SSDLoss  # noqa: E402
from ssd_keras.models.ssd7 import build_model  # noqa: E402
from ssd_keras.utils.backend import BACKENDS  # noqa: E402

folder, everyone = sys.argv[1], sys.argv[2].split(",")
backend = keras.backend.backend()
# Near-mean images keep a random network's boxes small enough to decode.
images = np.random.default_rng(0).uniform(110, 145, (2, 64, 64, 3)).astype("float32")


def targets(model):
    """Training targets of two fixed boxes per image for `model`'s anchors."""
    labels = [np.array([[1, 10, 12, 40, 44], [2, 30, 5, 60, 30]], np.float32)] * len(images)
    return SSDInputEncoder.from_model(model)(labels)


def save():
    keras.utils.set_random_seed(0)
    # The inference mode holds every custom layer (test_models round-trips each mode on each backend).
    model = build_model(
        (64, 64, 3),
        3,
        mode="inference",
        scales=[0.2, 0.4, 0.6, 0.8, 0.95],
        subtract_mean=127.5,
        divide_by_stddev=127.5,
        confidence_thresh=0.2,
        top_k=10,
    )
    model.save(os.path.join(folder, f"{backend}_inference.keras"))
    np.save(os.path.join(folder, f"{backend}_inference.npy"), model.predict(images, verbose=0))
    if backend == "torch":
        trained = build_model((64, 64, 3), 3, mode="training", scales=[0.2, 0.4, 0.6, 0.8, 0.95])
        trained.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-4, momentum=0.9), loss=SSDLoss().compute_loss)
        trained.train_on_batch(images, targets(trained))
        trained.save(os.path.join(folder, "torch_checkpoint.keras"))


def wait_for_everyone(timeout=600):
    """Returns once every backend's process has written its files; raises if one failed."""
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(os.path.join(folder, f"{b}.saved")) for b in everyone):
        failed = [b for b in everyone if os.path.exists(os.path.join(folder, f"{b}.failed"))]
        assert not failed, f"the {failed} process failed before writing its files"
        assert time.monotonic() < deadline, f"waited {timeout} s for the files of {everyone}"
        time.sleep(0.2)


try:
    save()
except BaseException:
    open(os.path.join(folder, f"{backend}.failed"), "w").close()  # the others stop waiting
    raise
open(os.path.join(folder, f"{backend}.saved"), "w").close()
wait_for_everyone()

differences = {}
if backend != "torch":  # goes on training here, with its optimizer state
    checkpoint = keras.saving.load_model(os.path.join(folder, "torch_checkpoint.keras"))
    assert int(checkpoint.optimizer.iterations) == 1
    loss = float(checkpoint.train_on_batch(images, targets(checkpoint)))
    assert np.isfinite(loss) and int(checkpoint.optimizer.iterations) == 2, loss
for path in sorted(glob.glob(os.path.join(folder, "*_inference.keras"))):
    name = os.path.basename(path)[: -len(".keras")]
    assert name.split("_")[0] in BACKENDS
    out = keras.saving.load_model(path).predict(images, verbose=0)
    expected = np.load(os.path.join(folder, name + ".npy"))
    assert out.shape == expected.shape, (name, out.shape, expected.shape)
    assert (expected[..., 1] > 0).sum() > 0, f"{name}: nothing detected"  # the same detections: ids, scores, boxes
    differences[name] = float(np.max(np.abs(out - expected)))
print(json.dumps(differences))
