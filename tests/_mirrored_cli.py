"""``ssd-keras`` with TensorFlow's CPU split into two logical devices first, so that
``--strategy mirrored`` has two replicas (run by test_cluster.py in a fresh process)."""

import sys

import tensorflow as tf

[cpu] = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
print(f"replicas: {tf.distribute.MirroredStrategy().num_replicas_in_sync}", flush=True)

from ssd_keras.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
