"""Run by test_distribution_and_export.py in fresh processes: one SGD step of SSD7 on one
device (``single``), or as worker `index` of a two-worker MultiWorkerMirroredStrategy
cluster on localhost (``worker index port0 port1``), same global batch. Prints the loss
and the weights' checksum as JSON."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if sys.argv[1] == "worker":
    index, ports = int(sys.argv[2]), sys.argv[3:5]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})

import tensorflow as tf  # noqa: E402

# The strategy must exist before any other TensorFlow op runs.
strategy = tf.distribute.MultiWorkerMirroredStrategy() if sys.argv[1] == "worker" else tf.distribute.get_strategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from ssd_keras_cli.configs import build, make_encoder, model_kwargs  # noqa: E402

GLOBAL_BATCH = 4
kwargs = dict(model_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])
x = np.random.default_rng(0).integers(0, 256, (GLOBAL_BATCH, 64, 64, 3)).astype("float32")
# Positives only in the first two images, which go to worker 0: per-worker normalisation
# would give a different loss.
labels = [np.array([[1, 5, 5, 40, 30], [2, 30, 20, 60, 62]], float), np.array([[3, 10, 12, 50, 50]], float),
          np.zeros((0, 5)), np.zeros((0, 5))]

keras.utils.set_random_seed(1)
with strategy.scope():
    model, sizes = build("ssd7", kwargs)
    for layer in model.layers:  # per-replica batch statistics would differ: freeze BN
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=SSDLoss(neg_pos_ratio=3).compute_loss)
if sys.argv[1] == "worker":
    from ssd_keras_cli.training import fix_multiworker
    fix_multiworker(model)
y = make_encoder("ssd7", kwargs, sizes, neg_iou_limit=0.5)(labels)
history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
weights = [w.astype(np.float64) for w in model.get_weights()]
print(json.dumps(dict(loss=history.history["loss"][0], replicas=strategy.num_replicas_in_sync,
                      weights=[float(w.sum()) for w in weights], weight_abs=[float(np.abs(w).sum()) for w in weights])))
