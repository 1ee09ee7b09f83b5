"""Run by test_backends.py in a fresh process, KERAS_BACKEND=jax and two host devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2 set by the caller): one SGD step of
SSD7 on one device and under keras.distribution.DataParallel over both, on the same
global batch; prints both as JSON."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from _distributed_step import step  # noqa: E402


class _OneDevice:
    def scope(self):
        import contextlib

        return contextlib.nullcontext()


assert keras.backend.backend() == "jax" and len(jax.devices()) == 2, jax.devices()
single_loss, single_weights = step(_OneDevice())
parallel = keras.distribution.DataParallel(devices=jax.devices())
assert parallel.get_data_layout((4, 64, 64, 3)).axes[0] == "batch"  # the batch is split between the devices
parallel_loss, parallel_weights = step(parallel)
difference = max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights, parallel_weights))
print(
    json.dumps(
        dict(
            single_loss=single_loss,
            parallel_loss=parallel_loss,
            weight_difference=difference,
            devices=len(jax.devices()),
        )
    )
)
