"""`TrainingRecorder`, the callback that writes resume points and watches for faults
(see `ssd_keras.training.checkpointing`, which holds what needs no Keras: the command line checks
a run's folder with it before Keras is imported)."""

import glob
import math
import os
import signal
import time

import keras
import numpy as np

from ssd_keras.errors import TrainingInterrupted
from ssd_keras.models.files import save_model
from ssd_keras.training.checkpointing import KEEP_RESUME_POINTS, RESUME_DIR, RunLog, callback_states
from ssd_keras.training.distribution import saving_alone
from ssd_keras.utils.files import remove_quietly


def _distributed(variable):
    """Whether `variable` is a tf.distribute one (one value per replica)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(variable.value, tf.distribute.DistributedValues)


class TrainingRecorder(keras.callbacks.Callback):
    """Writes resume points and watches for faults (module docstring).

    Args:
        out_dir: the run's folder.
        steps_per_epoch: batches per epoch.
        dataset: the `keras_dataset` the batches come from (for the batch numbering, the
            image files of a batch, its worker processes), or None.
        save_every: also write a resume point every this many steps (None: epoch ends only).
        save_every_minutes: also write one when this many minutes have passed since the
            last checkpoint (None: not by time).
        writer: whether this process writes (False: JAX processes after the first, which
            keep the position but leave the files to process 0).
        monitor: 'val_loss' to keep only improving epoch checkpoints, or 'loss' to keep all.
        info: stored in every checkpoint too (the class names).
        state: the training state of the checkpoint resumed from, or None.
        callbacks: the run's other callbacks, whose state checkpoints carry.
        log: a `RunLog`.
    """

    def __init__(
        self,
        out_dir,
        steps_per_epoch,
        dataset=None,
        save_every=None,
        save_every_minutes=None,
        writer=True,
        monitor="loss",
        info=None,
        state=None,
        callbacks=(),
        log=None,
    ):
        super().__init__()
        self.out_dir = out_dir
        self.steps_per_epoch = steps_per_epoch
        self.dataset = dataset
        self.save_every = save_every
        self.save_every_seconds = save_every_minutes * 60 if save_every_minutes else None
        self.writer = writer
        self.last_save_time = time.monotonic()
        self.monitor = monitor
        self.info = dict(info or {})
        self.callbacks = list(callbacks)
        self.log = log or RunLog(out_dir)
        self.resume = dict(state or {})
        best = self.resume.get("best")  # None: no epoch ended before the checkpoint (or none improved)
        self.best = math.inf if best is None else best
        self.failure = None
        self.epoch = None
        self.first_batch = 0
        self.last_checkpoint = None
        self.batch_sizes = None  # images in each data set batch of the epoch, when training from its arrays
        self.stop_signal = None  # set by `StopOnSignal`
        if writer:
            os.makedirs(os.path.join(out_dir, "checkpoints", RESUME_DIR), exist_ok=True)

    # ------------------------------------------------------------ the position

    def start_epoch(self, epoch):
        """Sets the epoch in progress; a resumed epoch starts at its checkpoint's batch."""
        resumed = self.resume.get("epoch") == epoch and self.resume.get("batch", 0) > 0
        self.epoch = epoch
        self.first_batch = self.resume["batch"] if resumed else 0
        # The loss of the epoch's batches before the checkpoint, as Keras averages it:
        # weighted by the images of each batch (a short last batch weighs less).
        self.base_total = self.resume.get("loss_total", 0.0) if resumed else 0.0
        self.base_images = self.resume.get("loss_images", 0.0) if resumed else 0.0
        if resumed and "loss_total" not in self.resume:  # written before this accounting: a sum over (full) batches
            size = getattr(self.dataset, "batch_size", 1)
            self.base_total, self.base_images = (
                self.resume.get("loss_sum", 0.0) * size,
                self.resume.get("loss_count", 0) * size,
            )
        self.train_totals = None
        if self.dataset is not None:
            self.dataset.epoch = epoch
        return self.first_batch

    def global_step(self, epoch, batch):
        """Steps done after `batch` (0-based) of `epoch`, counted from the run's start."""
        return epoch * self.steps_per_epoch + batch + 1

    # ------------------------------------------------------------ Keras hooks

    def on_epoch_begin(self, epoch, logs=None):
        """Sets the epoch (a resumed one at its checkpoint's batch) and its loss so far."""
        if self.epoch != epoch:
            self.start_epoch(epoch)
        elif self.dataset is not None:
            self.dataset.epoch = epoch  # whatever Keras' own calls of on_epoch_end did to it
        self._carry_loss_into_tracker()

    def _carry_loss_into_tracker(self):
        """A resumed epoch: puts the loss totals of its batches before the checkpoint into
        Keras' loss tracker, which `fit` has just reset. Keras then sums the epoch's loss as in
        an uninterrupted run, in the same order and float32 arithmetic, and logs the same
        numbers to the last bit (a float64 sum of the two parts differed in the last bit).
        Not under tf.distribute, whose tracker variables sum their replicas when read and
        cannot be assigned outside a replica: there `on_epoch_end` adds the two parts."""
        if not self.base_images:
            return
        tracker = self._loss_tracker()
        if _distributed(tracker.total):
            return
        tracker.total.assign(self.base_total)
        tracker.count.assign(self.base_images)
        self.base_total = self.base_images = 0.0

    def on_train_batch_end(self, batch, logs=None):
        """Stops on a NaN loss; writes a resume point every `save_every` steps, every
        `save_every_minutes` and on a signal."""
        batch_in_epoch = self.first_batch + batch
        loss = float((logs or {}).get("loss", 0.0))
        steps = (self.params or {}).get("steps")
        if steps is None or batch + 1 >= steps:  # this fit's last training step: validation resets the tracker next
            self.train_totals = self._tracker_totals()
        step = self.global_step(self.epoch, batch_in_epoch)
        if not math.isfinite(loss):
            self._fail_nan(batch_in_epoch, loss)
            return
        saved = False
        due = bool(self.save_every) and step % self.save_every == 0
        due = due or (
            self.save_every_seconds is not None and time.monotonic() - self.last_save_time >= self.save_every_seconds
        )
        if due and batch_in_epoch + 1 < self.steps_per_epoch:
            self._save_resume_point(self.epoch, batch_in_epoch + 1, step)
            saved = True
        if self.stop_signal is not None and batch_in_epoch + 1 < self.steps_per_epoch:
            if not saved:
                self._save_resume_point(self.epoch, batch_in_epoch + 1, step)
            # Out of `fit` at once: no validation, no epoch end for a part of an epoch. (After
            # an epoch's last batch, the epoch ends as usual, and `on_epoch_end` stops.)
            raise self.interrupted(self.epoch, batch_in_epoch + 1)

    def interrupted(self, epoch, batch):
        """The `TrainingInterrupted` for a stop before `batch` of `epoch` (both 0-based)."""
        name = signal.Signals(self.stop_signal).name
        message = (
            f"{name}: training stopped; {self.last_checkpoint} goes on at epoch {epoch + 1}, batch {batch + 1} "
            "(--resume latest)"
        )
        self.log.write(message)
        return TrainingInterrupted(message, self.stop_signal)

    def on_epoch_end(self, epoch, logs=None):
        """Writes the epoch's checkpoint (or a resume point where it did not improve)."""
        if self.failure is not None:
            return
        if logs is not None and self.base_images:
            # A resumed epoch: its loss over the batches before the checkpoint too.
            logs["loss"] = self._epoch_loss(self.train_totals or self._tracker_totals())
        step = self.global_step(epoch, self.steps_per_epoch - 1)
        value = (logs or {}).get(self.monitor)
        improved = self.monitor == "loss" or (value is not None and value < self.best)
        if improved and value is not None:
            self.best = value
        state = self._state(epoch + 1, 0, step, totals=(0.0, 0.0))
        if improved:
            name = f"epoch-{epoch + 1:02d}_loss-{logs['loss']:.4f}" + (
                f"_val_loss-{logs['val_loss']:.4f}" if "val_loss" in logs else ""
            )
            self._write(os.path.join(self.out_dir, "checkpoints", name + ".keras"), state)
        else:
            self._save_resume_point(epoch + 1, 0, step, state)
        if self.stop_signal is not None:  # it came during the epoch's last batch or its validation
            self.model.stop_training = True

    # ------------------------------------------------------------ checkpoints

    def _loss_tracker(self):
        return next(metric for metric in self.model.metrics if metric.name == "loss")

    def _tracker_totals(self):
        """(sum of loss x images, images) of this `fit` call's training batches so far, from
        Keras' loss tracker (a `Mean` weighted by the images of each batch), with those of a
        resumed epoch's batches before the checkpoint where `_carry_loss_into_tracker` put
        them in."""
        tracker = self._loss_tracker()
        # convert_to_numpy: under tf.distribute the variables sum their replicas' values when read.
        return float(keras.ops.convert_to_numpy(tracker.total)), float(keras.ops.convert_to_numpy(tracker.count))

    def _epoch_loss(self, totals):
        """The epoch's mean loss so far, the batches before a resumed checkpoint included."""
        total, images = totals
        return (self.base_total + total) / (self.base_images + images)

    def _state(self, epoch, batch, step, totals=None):
        """What a checkpoint stores to resume at `batch` of `epoch` (`totals`: the loss totals
        of the epoch so far; default: read from Keras' loss tracker)."""
        if totals is None:
            total, images = self._tracker_totals()
            totals = (self.base_total + total, self.base_images + images)
        return dict(
            epoch=epoch,
            batch=batch,
            global_step=step,
            steps_per_epoch=self.steps_per_epoch,
            loss_total=totals[0],
            loss_images=totals[1],
            best=self.best if math.isfinite(self.best) else None,
            callbacks=callback_states(self.callbacks),
        )

    def _save_resume_point(self, epoch, batch, step, state=None):
        if not self.writer:
            self.last_save_time = time.monotonic()
            return
        state = state if state is not None else self._state(epoch, batch, step)
        self._write(os.path.join(self.out_dir, "checkpoints", RESUME_DIR, f"step-{step:08d}.keras"), state)
        points = sorted(glob.glob(os.path.join(self.out_dir, "checkpoints", RESUME_DIR, "step-*.keras")))
        for old in points[:-KEEP_RESUME_POINTS]:
            remove_quietly(old)

    def _write(self, path, state):
        self.last_save_time = time.monotonic()
        if not self.writer:
            return
        with saving_alone():
            save_model(self.model, path, info=dict(self.info, training=state))
        self.last_checkpoint = path
        self.log.write(f"checkpoint {path} (after {state['global_step']} steps)")

    # ------------------------------------------------------------ faults

    def batch_files(self, epoch, batch):
        """The image files of `batch` of `epoch`, as far as the data set knows them.

        Training from an epoch's arrays (`batch_sizes` set), where some of the data set's
        batches lost images (no boxes left after augmentation), a training batch takes rows
        from neighbouring data set batches: the files of all of those are returned.
        """
        if self.dataset is None or getattr(self.dataset.data_generator, "filenames", None) is None:
            return []
        batches = [batch]
        if self.batch_sizes is not None:
            ends = np.cumsum(self.batch_sizes)  # rows of the epoch's arrays after each data set batch
            size = self.dataset.batch_size
            first = int(np.searchsorted(ends, batch * size, side="right"))
            last = int(np.searchsorted(ends, min((batch + 1) * size, int(ends[-1])) - 1, side="right"))
            batches = range(first, last + 1)
        filenames = self.dataset.data_generator.filenames
        return [
            filenames[i] for b in batches for i in self.dataset._batch_indices(epoch * self.dataset.epoch_length + b)
        ]

    def _fail_nan(self, batch, loss):
        files = self.batch_files(self.epoch, batch)
        self.failure = (
            f"The loss became {loss} at epoch {self.epoch + 1}, batch {batch + 1} (step "
            f"{self.global_step(self.epoch, batch)}); training stopped, nothing was saved after it"
        )
        self.log.write(self.failure + ". The batch's images: " + (", ".join(files) if files else "(unknown)"))
        self.model.stop_training = True
