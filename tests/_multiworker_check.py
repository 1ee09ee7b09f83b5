"""Run by test_distribution_and_export.py in fresh processes: one SGD step of SSD7 on one
device (``single``), or as worker `index` of a two-worker MultiWorkerMirroredStrategy
cluster on localhost (``worker index port0 port1``), same global batch. Prints the loss
and the weights' sums as JSON."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if sys.argv[1] == "worker":
    index, ports = int(sys.argv[2]), sys.argv[3:5]
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )

import tensorflow as tf  # noqa: E402

# The strategy must exist before any other TensorFlow op runs.
strategy = tf.distribute.MultiWorkerMirroredStrategy() if sys.argv[1] == "worker" else tf.distribute.get_strategy()

import numpy as np  # noqa: E402
from _distributed_step import step  # noqa: E402

loss, weights = step(strategy)
print(
    json.dumps(
        dict(
            loss=loss,
            replicas=strategy.num_replicas_in_sync,
            weights=[float(w.sum()) for w in weights],
            weight_abs=[float(np.abs(w).sum()) for w in weights],
        )
    )
)
