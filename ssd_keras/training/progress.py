"""Training progress for people: one bar per epoch, with its number out of all.

Keras' own display, when the demo trains one epoch per `fit` call, reads "Epoch 2/2",
"Epoch 3/3", ... and shows nothing while the epoch's batches are built. `EpochProgress`
shows ``epoch 3/22`` with a bar over the batches (building them, then training on
them), the loss, the epoch's elapsed and remaining time, and after each epoch a line
with the run's elapsed time and an estimate of what is left.
"""

import sys
import time

import keras
from tqdm import tqdm


class EpochProgress(keras.callbacks.Callback):
    """Progress of `fit` for `epochs` epochs (counted from 1, resumed ones included).

    Args:
        epochs: the last epoch (Keras' `epochs`).
        initial_epoch: the epoch training starts from (0 unless resuming).
        file: where the bars go (default: standard error).

    Call `building(epoch, n_batches)` before building an epoch's batches up front and
    `built()` after each; the training part of the bar follows in the same epoch.
    """

    def __init__(self, epochs, initial_epoch=0, file=None):
        super().__init__()
        self.epochs = epochs
        self.initial_epoch = initial_epoch
        self.file = file or sys.stderr
        self.bar = None
        self.epoch = None
        self.start = time.monotonic()
        self.epoch_seconds = []

    def _bar(self, epoch, total, phase):
        # Building and training get a bar each (under the same "epoch 3/22"): one bar for
        # both would show a rate, and so a time left, that mixes the fast building of a
        # batch with the slow step on it.
        self.close()
        if self.epoch != epoch:
            self.epoch, self.epoch_start = epoch, time.monotonic()
        self.bar = tqdm(
            total=total,
            desc=f"epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            file=self.file,
            leave=False,
            dynamic_ncols=True,
            postfix=phase,
        )

    def building(self, epoch, n_batches):
        """Starts the bar of an epoch whose `n_batches` batches are built first."""
        self._bar(epoch, n_batches, "building batches")

    def built(self):
        """One batch of the epoch built."""
        self.bar.update(1)

    def on_epoch_begin(self, epoch, logs=None):
        """Starts the epoch's training bar."""
        self._bar(epoch, self.params.get("steps") or 0, "training")

    def on_train_batch_end(self, batch, logs=None):
        """Advances the bar and shows the loss."""
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

    def on_epoch_end(self, epoch, logs=None):
        """Closes the bar; prints the epoch's losses, its time, and the run's elapsed and remaining time."""
        self.close()
        self.epoch = None
        self.epoch_seconds.append(time.monotonic() - self.epoch_start)
        elapsed = time.monotonic() - self.start
        left = (self.epochs - epoch - 1) * sum(self.epoch_seconds) / len(self.epoch_seconds)
        values = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k in ("loss", "val_loss"))
        print(
            f"epoch {epoch + 1}/{self.epochs}: {values}; {self.epoch_seconds[-1]:.0f} s "
            f"({_duration(elapsed)} elapsed, about {_duration(left)} left)",
            file=self.file,
            flush=True,
        )

    def on_train_end(self, logs=None):
        """Closes a bar left open."""
        self.close()

    def close(self):
        """Closes the bar in progress, if any (also after an exception ends `fit`)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
