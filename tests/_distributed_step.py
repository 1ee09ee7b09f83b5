"""One SGD step of SSD7 on a fixed global batch of 4, under a given strategy (anything with
a ``scope()``); used by `_mirrored_check.py`, `_multiworker_check.py` (tf.distribute) and
`_data_parallel_check.py` (keras.distribution on JAX) after they set their devices up."""

import keras
import numpy as np

from ssd_keras.losses.ssd_loss import SSDLoss
from ssd_keras.models.presets import build, builder_kwargs, make_encoder
from ssd_keras.training.distribution import fix_multiworker

GLOBAL_BATCH = 4
KWARGS = dict(builder_kwargs("ssd7", 3, (64, 64, 3)), variances=[0.1, 0.1, 0.2, 0.2])
X = np.random.default_rng(0).integers(0, 256, (GLOBAL_BATCH, 64, 64, 3)).astype("float32")
# Positives only in the first two images, which go to the first replica (or worker), the
# last two have none: per-replica normalisation would give a different loss.
LABELS = [
    np.array([[1, 5, 5, 40, 30], [2, 30, 20, 60, 62]], float),
    np.array([[3, 10, 12, 50, 50]], float),
    np.zeros((0, 5)),
    np.zeros((0, 5)),
]


def step(strategy):
    """Returns (loss, weights as float64 arrays) after one step under `strategy`."""
    keras.utils.set_random_seed(1)
    with strategy.scope():  # (fit too: a keras.distribution shards the batches only inside it)
        model, _ = build("ssd7", KWARGS)
        for layer in model.layers:  # per-replica batch statistics would differ: freeze BN
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=SSDLoss(neg_pos_ratio=3).compute_loss)
        fix_multiworker(model)
        y = make_encoder("ssd7", model, neg_iou_limit=0.5)(LABELS)
        history = model.fit(X, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0], [w.astype(np.float64) for w in model.get_weights()]
