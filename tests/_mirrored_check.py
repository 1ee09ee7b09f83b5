"""Run by test_distribution_and_export.py in a fresh process: one SGD step of SSD7 on one
device and under MirroredStrategy on two logical CPUs, same global batch; prints both as JSON."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from _distributed_step import step  # noqa: E402

single_loss, single_weights = step(tf.distribute.get_strategy())
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
mirrored_loss, mirrored_weights = step(mirrored)
difference = max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights, mirrored_weights))
print(json.dumps(dict(single_loss=single_loss, mirrored_loss=mirrored_loss, weight_difference=difference, replicas=2)))
