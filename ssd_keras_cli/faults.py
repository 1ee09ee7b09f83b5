"""Fault injection for the reliability tests (`tests/test_fault_tolerance.py`).

A training run reads ``SSD_KERAS_FAULT``, a comma-separated list of ``fault:N``:

* ``kill-at-step:N``: the process sends itself SIGKILL after training step N (counted
  from 1 over the whole run, resumed steps included), like ``kill -9``;
* ``kill-in-checkpoint:N``: SIGKILL halfway through writing the N-th checkpoint of this
  process (the temporary file is written, not yet renamed);
* ``enospc-in-checkpoint:N``: the N-th checkpoint write fails with "No space left on
  device" halfway through;
* ``nan-at-step:N``: the targets of training step N are NaN, so its loss is;
* ``kill-worker-at-step:N``: a batch worker process gets SIGKILL after step N;
* ``interrupt-at-step:N``, ``terminate-at-step:N``: the process sends itself SIGINT (as
  Ctrl-C) or SIGTERM (as ``kill`` or a cluster's preemption) after step N.

Nothing happens when the variable is unset, which is always outside the tests.
"""

import os

FAULTS = ("kill-at-step", "kill-in-checkpoint", "enospc-in-checkpoint", "nan-at-step", "kill-worker-at-step", "interrupt-at-step",
          "terminate-at-step")


def planned(name):
    """N of fault `name` in ``SSD_KERAS_FAULT``, or None."""
    for item in os.environ.get("SSD_KERAS_FAULT", "").split(","):
        fault, _, value = item.strip().partition(":")
        if fault == name and value:
            return int(value)
    return None


def kill_now():
    """Ends this process as ``kill -9`` would: no cleanup, no flushing."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def inject_nan(dataset, step):
    """Makes the targets of training step `step` (counted from 1) of a `keras_dataset` NaN
    (the images are uint8, which has no NaN)."""
    import numpy as np

    base = type(dataset)

    def __getitem__(self, index):
        x, y, *rest = base.__getitem__(self, index)
        if self.epoch * self.epoch_length + self.first_batch + index + 1 == step:
            y = np.full(np.shape(y), np.nan, np.float32)
        return (x, y, *rest)

    dataset.__class__ = type(base.__name__, (base,), {"__getitem__": __getitem__, "__module__": base.__module__})
