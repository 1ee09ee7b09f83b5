"""Fault injection for the reliability tests, from outside the package.

A test runs the real ``ssd-keras`` (or any Python) with this folder first on
``PYTHONPATH`` and ``SSD_KERAS_FAULT`` set to a comma-separated list of ``fault:N``; Python
imports this module at start-up, and it wraps the package's functions as they are
imported (nothing in `ssd_keras` knows about it):

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

Without ``SSD_KERAS_FAULT`` it does nothing.
"""

import importlib.abc
import importlib.util
import os
import signal
import sys


def planned(name):
    """N of fault `name` in ``SSD_KERAS_FAULT``, or None."""
    for item in os.environ.get("SSD_KERAS_FAULT", "").split(","):
        fault, _, value = item.strip().partition(":")
        if fault == name and value:
            return int(value)
    return None


def _kill_now():
    os.kill(os.getpid(), signal.SIGKILL)


def _patch_recorder(module):
    """Faults after a training step: they come before the step's resume point is written."""
    original = module.TrainingRecorder.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        step = self.global_step(self.epoch, self.first_batch + batch)
        if planned("kill-worker-at-step") == step:
            pool = getattr(self.dataset, "_pool", None)
            if pool is not None and pool._processes:
                os.kill(pool._processes[0].pid, signal.SIGKILL)
        if planned("kill-at-step") == step:
            _kill_now()
        for fault, signum in (("interrupt-at-step", signal.SIGINT), ("terminate-at-step", signal.SIGTERM)):
            if planned(fault) == step:
                signal.raise_signal(signum)  # handled (by StopOnSignal) before the next line runs
        return original(self, batch, logs)

    module.TrainingRecorder.on_train_batch_end = on_train_batch_end


def _patch_model_files(module):
    """Faults while a checkpoint (a file under ``checkpoints/``) is written, after its
    temporary file is complete and before it is renamed."""
    import contextlib
    import errno

    original = module.atomic_write
    writes = [0]

    @contextlib.contextmanager
    def atomic_write(path, *args, **kwargs):
        checkpoint = os.sep + "checkpoints" + os.sep in os.path.abspath(path)
        with original(path, *args, **kwargs) as temporary:
            yield temporary
            if checkpoint:
                writes[0] += 1
                if planned("kill-in-checkpoint") == writes[0]:
                    _kill_now()
                if planned("enospc-in-checkpoint") == writes[0]:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)

    module.atomic_write = atomic_write


def _patch_adapter(module):
    """NaN targets at one training step (the images are uint8, which has no NaN)."""
    import numpy as np

    step = planned("nan-at-step")
    original = module.DataGeneratorDataset.__getitem__

    def __getitem__(self, index):
        x, y, *rest = original(self, index)
        if step is not None and self.epoch * self.epoch_length + self.first_batch + index + 1 == step:
            y = np.full(np.shape(y), np.nan, np.float32)
        return (x, y, *rest)

    module.DataGeneratorDataset.__getitem__ = __getitem__


PATCHES = {
    "ssd_keras.training.recorder": _patch_recorder,
    "ssd_keras.models.files": _patch_model_files,
    "ssd_keras.data.keras_adapter": _patch_adapter,
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Lets the usual finders find the modules of `PATCHES`, and patches each once executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            PATCHES[fullname](module)

        spec.loader.exec_module = exec_and_patch
        return spec


if os.environ.get("SSD_KERAS_FAULT"):
    sys.meta_path.insert(0, _PatchAfterImport())
