"""The SSD loss (Liu et al. 2016, §2.2): softmax log loss plus smooth L1 localization
loss, with hard negative mining.

Most anchors are background, so the loss keeps only the hardest negatives: the
`neg_pos_ratio` * (number of positives) background anchors with the largest
classification loss (at least `n_neg_min`), mined over the whole batch, not per
image. Neutral anchors (all-zero class vector from the encoder: IoU between
`neg_iou_limit` and `pos_iou_threshold`) count as neither. The sum is divided by the
number of positives in the batch (at least 1).

Under a `tf.distribute` strategy (MirroredStrategy, MultiWorkerMirroredStrategy) "the
batch" is the global batch: positives are counted over all replicas and the negatives
are mined over all replicas' anchors, so the loss and the gradients do not depend on
how many replicas share the batch.
"""

import keras
import numpy as np
from keras import ops

from ssd_keras.boxes.layout import CLASSES, N_BOX_CHANNELS, OFFSETS
from ssd_keras.utils.backend import device_constant, scalar_like


class SSDLoss:
    """The SSD multibox loss.

    Args:
        neg_pos_ratio: most negatives kept per positive in hard negative mining.
        n_neg_min: fewest negatives kept, even when the batch has no positives.
        alpha: weight of the localization loss.
        background_id: the class column of the background, as the encoder's
            `background_id` (0 in the original, which assumed it).

    Examples:
        >>> from ssd_keras.models.ssd7 import build_model
        >>> model = build_model((64, 64, 3), n_classes=3, scales=[0.2, 0.4, 0.6, 0.8, 0.95])
        >>> ssd_loss = SSDLoss(neg_pos_ratio=3, alpha=1.0)
        >>> model.compile(optimizer="adam", loss=ssd_loss.compute_loss)
    """

    def __init__(self, neg_pos_ratio=3, n_neg_min=0, alpha=1.0, background_id=0):
        if neg_pos_ratio < 0 or n_neg_min < 0:
            raise ValueError(
                f"Expected neg_pos_ratio >= 0 and n_neg_min >= 0. Received: neg_pos_ratio={neg_pos_ratio}, "
                f"n_neg_min={n_neg_min}"
            )
        if isinstance(background_id, bool) or int(background_id) != background_id or background_id < 0:
            raise ValueError(
                f"Expected `background_id` to be a class column index >= 0. Received: background_id={background_id!r}"
            )
        self.neg_pos_ratio = neg_pos_ratio
        self.n_neg_min = n_neg_min
        self.alpha = alpha
        self.background_id = int(background_id)

        # Not a bound method: Keras 3 saves a compiled model's bound-method loss in a
        # form it cannot load back. A registered callable with a config reloads by
        # itself, also when ``custom_objects={'compute_loss': ...}`` is given.
        self.compute_loss = SSDLossFunction(neg_pos_ratio, n_neg_min, alpha, self.background_id, _owner=self)

    def smooth_L1_loss(self, y_true, y_pred):
        """Smooth L1 summed over the last axis: ``0.5 d^2`` where ``|d| < 1``, else ``|d| - 0.5``."""
        absolute = ops.abs(y_true - y_pred)
        return ops.sum(ops.where(absolute < 1.0, 0.5 * ops.square(absolute), absolute - 0.5), axis=-1)

    def log_loss(self, y_true, y_pred):
        """Cross-entropy of probabilities: ``-sum(y_true * log(max(y_pred, 1e-15)))`` over the last axis."""
        return -ops.sum(y_true * ops.log(ops.maximum(y_pred, scalar_like(1e-15, y_pred))), axis=-1)

    def _compute_loss(self, y_true, y_pred):
        """The loss of a batch, one value per image (``SSDLoss(...).compute_loss``).

        Args:
            y_true: (batch, n_boxes, n_classes + 1 + 12), the `SSDInputEncoder` targets.
            y_pred: the model's output, same shape; any float dtype (computed in float32).

        Returns:
            float32 tensor (batch,). Each image's positive and mined negative class loss
            plus `alpha` times its localization loss, divided by the number of
            positives in the whole batch (at least 1) and multiplied by the batch size,
            so that Keras' mean over the batch gives
            ``sum(class + alpha * loc) / max(1, positives)`` as in the paper.
        """
        # Never writes to self: the original rebound its attributes to tensors here,
        # which fails when TF traces the function a second time.
        _check_shapes(y_true.shape, y_pred.shape)
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        batch_size = ops.shape(y_pred)[0]
        n_boxes = ops.shape(y_pred)[1]

        class_loss = self.log_loss(y_true[..., CLASSES], y_pred[..., CLASSES])  # (batch, n_boxes)
        loc_loss = self.smooth_L1_loss(y_true[..., OFFSETS], y_pred[..., OFFSETS])
        n_class_columns = y_true.shape[-1] - N_BOX_CHANNELS
        if not 0 <= self.background_id < n_class_columns:
            raise ValueError(f"`background_id`={self.background_id} is not one of the {n_class_columns} class columns.")
        negatives = y_true[..., self.background_id]
        # A positive anchor has a one-hot class other than the background; a neutral one none.
        not_background = device_constant(
            self,
            ("not_background", n_class_columns),
            lambda: np.arange(n_class_columns) != self.background_id,
            like=y_true,
        )
        positives = ops.max(y_true[..., CLASSES] * not_background, axis=-1)
        replicas = _Replicas()
        n_positive = replicas.sum(ops.sum(positives))

        pos_class_loss = ops.sum(class_loss * positives, axis=-1)
        # Hard negative mining over the whole (global) batch. Negatives with zero loss
        # are not candidates (as in the original's count_nonzero).
        local_neg_losses = ops.reshape(class_loss * negatives, (-1,))
        neg_losses, offset = replicas.gather(local_neg_losses)
        n_neg_losses = ops.sum(ops.cast(neg_losses > 0, "int32"))
        n_keep = ops.cast(self.neg_pos_ratio * n_positive, "int32")
        n_keep = ops.maximum(n_keep, scalar_like(int(self.n_neg_min), n_keep))
        n_keep = ops.minimum(n_keep, n_neg_losses)
        # Rank of each loss in descending order; the n_keep best ranks are mined. The
        # mined sum is the sum of the n_keep largest losses, whatever the tie order.
        # ops.scatter_update, not ops.scatter: under PyTorch (Keras 3.15) the latter is a
        # Python loop over its indices, one GPU wait per anchor of the batch.
        order = ops.argsort(-neg_losses)
        ranks = ops.scatter_update(
            ops.zeros_like(order), ops.expand_dims(order, -1), ops.arange(ops.shape(order)[0], dtype=order.dtype)
        )
        if offset is not None:  # this replica's part of the global batch
            ranks = ops.slice(ranks, ops.reshape(offset, (1,)), ops.shape(local_neg_losses))
        mined = ops.cast(ops.cast(ranks, "int32") < n_keep, "float32")
        neg_class_loss = ops.sum(ops.reshape(local_neg_losses * mined, (batch_size, n_boxes)), axis=-1)

        loc_loss = ops.sum(loc_loss * positives, axis=-1)
        total = (pos_class_loss + neg_class_loss + self.alpha * loc_loss) / ops.maximum(
            n_positive, scalar_like(1.0, n_positive)
        )
        # Keras averages over the local batch and, under a strategy, divides by the
        # number of replicas before summing their gradients: undo both.
        if isinstance(batch_size, int):  # a static batch (always under PyTorch and JAX)
            return total * float(batch_size * replicas.count)
        return total * ops.cast(batch_size * replicas.count, "float32")


def _check_shapes(true_shape, pred_shape):
    """Targets encoded for other anchors or classes than the model's fail here, by name,
    instead of in a multiplication deep in the loss. Unknown (None) sizes pass."""
    try:
        true_shape, pred_shape = tuple(true_shape), tuple(pred_shape)
    except (TypeError, ValueError):  # a TensorFlow shape of unknown rank
        return
    if len(true_shape) != 3 or len(pred_shape) != 3:
        raise ValueError(
            f"SSDLoss expects y_true and y_pred of shape (batch, n_boxes, n_classes + 1 + 12). "
            f"Received: y_true {true_shape}, y_pred {pred_shape}"
        )
    for axis, what in ((1, "boxes (anchors)"), (2, "channels (n_classes + 1 + 12)")):
        if true_shape[axis] is not None and pred_shape[axis] is not None and true_shape[axis] != pred_shape[axis]:
            raise ValueError(
                f"SSDLoss: the targets have {true_shape[axis]} {what} but the model predicts {pred_shape[axis]} "
                f"(y_true {true_shape}, y_pred {pred_shape}): the encoder was built for other anchors or classes "
                f"than the model's. Build it with SSDInputEncoder.from_model(model)."
            )


@keras.saving.register_keras_serializable(package="ssd_keras")
class SSDLossFunction:
    """What ``SSDLoss(...).compute_loss`` is: a callable ``(y_true, y_pred) -> (batch,)``
    that Keras saves with a compiled model (its arguments included) and restores
    without `custom_objects`."""

    __name__ = "compute_loss"

    def __init__(self, neg_pos_ratio=3, n_neg_min=0, alpha=1.0, background_id=0, _owner=None):
        self._owner = _owner if _owner is not None else SSDLoss(neg_pos_ratio, n_neg_min, alpha, background_id)

    def __call__(self, y_true, y_pred):
        return self._owner._compute_loss(y_true, y_pred)

    @property
    def __doc__(self):
        return SSDLoss._compute_loss.__doc__

    def get_config(self):
        """The loss's settings, as plain Python values."""
        owner = self._owner
        return dict(
            neg_pos_ratio=owner.neg_pos_ratio,
            n_neg_min=owner.n_neg_min,
            alpha=owner.alpha,
            background_id=owner.background_id,
        )

    @classmethod
    def from_config(cls, config):
        """The loss function of `config` (from `get_config`)."""
        return cls(**config)


class _Replicas:
    """Cross-replica sums and gathers inside a `tf.distribute` replica context; the
    identity on one device and on the other Keras backends."""

    def __init__(self):
        self.context = None
        self.count = 1
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                self.context = context
                self.count = context.num_replicas_in_sync

    def sum(self, value):
        if self.context is None:
            return value
        import tensorflow as tf

        return self.context.all_reduce(tf.distribute.ReduceOp.SUM, value)

    def gather(self, value):
        """``(all replicas' values concatenated in replica order, offset of this replica's)``;
        the offset is None on one device."""
        if self.context is None:
            return value, None
        import tensorflow as tf

        sizes = self.context.all_gather(tf.reshape(tf.shape(value)[0], (1,)), axis=0)
        offset = tf.reduce_sum(sizes[: self.context.replica_id_in_sync_group])
        return self.context.all_gather(value, axis=0), offset
