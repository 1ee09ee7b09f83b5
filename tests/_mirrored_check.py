"""Run by test_distribution.py in a fresh process: one SGD step of SSD7 on one device and
under MirroredStrategy on two logical CPUs, same global batch; prints both as JSON."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_loss_function.keras_ssd_loss import SSDLoss  # noqa: E402
from ssd_keras_cli.configs import build, make_encoder, model_kwargs  # noqa: E402

GLOBAL_BATCH = 4
kwargs = dict(model_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (GLOBAL_BATCH, 64, 64, 3)).astype("float32")
# Positives only in the first two images: replica 0 holds them all, replica 1 none,
# so per-replica normalisation would give a different loss.
labels = [np.array([[1, 5, 5, 40, 30], [2, 30, 20, 60, 62]], float), np.array([[3, 10, 12, 50, 50]], float),
          np.zeros((0, 5)), np.zeros((0, 5))]


def step(strategy):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model, sizes = build("ssd7", kwargs)
        for layer in model.layers:  # per-replica batch statistics would differ: freeze BN
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=SSDLoss(neg_pos_ratio=3).compute_loss)
    y = make_encoder("ssd7", kwargs, sizes, neg_iou_limit=0.5)(labels)
    history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0], [w.tolist() for w in model.get_weights()]


single_loss, single_weights = step(tf.distribute.get_strategy())
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
mirrored_loss, mirrored_weights = step(mirrored)
difference = max(float(np.max(np.abs(np.array(a) - np.array(b)))) for a, b in zip(single_weights, mirrored_weights))
print(json.dumps(dict(single_loss=single_loss, mirrored_loss=mirrored_loss, weight_difference=difference, replicas=2)))
