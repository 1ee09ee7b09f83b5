"""Training that survives faults.

`TrainingRecorder` (in `ssd_keras.training.recorder`) is the callback `training.train` puts
first. It writes resume points (full `.keras` files: weights, optimizer state, and the
training state in the file's ``ssd_keras.json``) every `save_every` steps and at every
epoch end, each atomically (`ssd_keras.models.files.save_model`). A run killed at any point, even
while writing, resumes from the newest complete one with `--resume latest`
(`find_resume_point`, which skips damaged files with a warning naming them): the data
stream goes on at the batch where the checkpoint was written (batches are seeded by
their number, so they are the ones the uninterrupted run sees), the learning-rate
schedule at its epoch, ReduceLROnPlateau and EarlyStopping with their counters, and the
epoch's loss with the batches before.

A NaN or infinite loss stops the run at that batch: nothing is saved after it, the
message names the epoch, the batch and the batch's image files, which also go to
``train.log``. A batch worker process that dies stops the run the same way.

SIGINT (Ctrl-C, a notebook's "interrupt") and SIGTERM (a cluster's preemption, ``kill``)
stop the run after the training batch in progress (`StopOnSignal`): a resume point is
written there (at an epoch's last batch or during its validation, the epoch ends first,
with its checkpoint) and `TrainingInterrupted` names it. A second signal stops at once.

Where files go, under the run's folder:

* ``checkpoints/epoch-NN_loss-L[_val_loss-V].keras``: after each epoch (with
  validation data, after each improvement), as before; each is a resume point too;
* ``checkpoints/resume/step-SSSSSSSS.keras``: the resume points between them (the
  newest two are kept);
* ``train.log``: what happened (starts, resumes, skipped checkpoints, faults).
"""

import csv
import glob
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
import zipfile
import zlib

from ssd_keras.errors import ArgumentError, CorruptModelFile
from ssd_keras.models.files import INFO_MEMBER, verify
from ssd_keras.utils.files import atomic_write, remove_quietly

RESUME_DIR = "resume"
KEEP_RESUME_POINTS = 2
# Attributes of Keras' stateful callbacks that a resumed run must get back.
CALLBACK_STATE = {
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
}


class StopOnSignal:
    """While in use (``with``), SIGINT and SIGTERM ask `recorder` to stop after the batch in
    progress, with a resume point, instead of ending the process where it stands; a second
    signal raises KeyboardInterrupt at once. The previous handlers come back on exit. Outside
    the main thread (where Python cannot set handlers) it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, recorder):
        self.recorder = recorder
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.recorder.stop_signal is not None:
            raise KeyboardInterrupt(f"{name} again: stopped at once, without a resume point")
        self.recorder.stop_signal = signum
        self.recorder.log.write(f"{name} received: stopping after the batch in progress, with a resume point")
        from tqdm import tqdm  # prints above a progress bar in progress

        tqdm.write(
            f"{name}: stopping after the batch in progress, with a resume point (send it again to stop at once)",
            file=sys.stderr,
        )


class RunLog:
    """``train.log``: one timestamped line per event, appended, flushed at once."""

    def __init__(self, out_dir):
        self.path = os.path.join(out_dir, "train.log")

    def write(self, message):
        """Appends one timestamped line; a log that cannot be written does not stop training."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        except OSError:
            pass  # a log that cannot be written does not stop training


class NullLog:
    """The log of a process that writes none (the JAX processes after the first: process 0
    writes the run's files)."""

    path = "process 0's train.log"

    def write(self, message):
        """Writes nothing."""


def _newness(path):
    """How far into training a checkpoint was written, for ordering: its step count (from
    its state, else from a ``step-N`` name); checkpoints of earlier versions, which have
    neither, come after, by the epoch in their name. A file whose archive or stored info
    cannot be read comes first: `find_resume_point` then tries it, finds it damaged and
    names it, whatever its name says (ordered by name, a damaged epoch checkpoint would be
    passed over in silence for an older one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            state = json.loads(archive.read(INFO_MEMBER)).get("training") if INFO_MEMBER in names else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, zlib.error, AttributeError):
        return math.inf
    if state:
        return state["global_step"]
    name = os.path.basename(path)
    match = re.search(r"step-(\d+)", name)
    if match:
        return int(match.group(1))
    match = re.search(r"epoch-(\d+)", name)
    return -(10**9) + int(match.group(1)) if match else -(10**10)


def _checkpoint_files(out_dir):
    return glob.glob(os.path.join(out_dir, "checkpoints", "*.keras")) + glob.glob(
        os.path.join(out_dir, "checkpoints", RESUME_DIR, "*.keras")
    )


def resume_candidates(out_dir):
    """Checkpoint files under `out_dir`, the newest first."""
    return sorted(_checkpoint_files(out_dir), key=_newness, reverse=True)


def earlier_run(out_dir):
    """The files of an earlier training run in `out_dir` that a new run would overwrite or
    mix with its own: its checkpoints, resume points, ``model.keras`` and
    ``training_log.csv`` (empty if there is none). A log without an epoch's row (a run that
    stopped before its first epoch ended, on bad data say) holds nothing to keep."""
    files = [path for path in [os.path.join(out_dir, "model.keras")] if os.path.isfile(path)]
    log = os.path.join(out_dir, "training_log.csv")
    if len(_log_rows(log)) > 1:  # a header and at least one epoch's row
        files.append(log)
    # Not `resume_candidates`: ordering them opens every checkpoint, and any order will do here.
    return sorted(_checkpoint_files(out_dir)) + files


def check_new_run(out_dir, overwrite=False, flags=False, log=None):
    """Before a new (not resumed) run in `out_dir`: raises `ArgumentError` if an earlier run's
    files are there, which it would overwrite (its model and log) or mix with its own (its
    checkpoints, which ``--resume latest`` would then choose among); with `overwrite`,
    deletes them instead."""
    files = earlier_run(out_dir)
    if not files:
        return
    if overwrite:
        for path in files:
            remove_quietly(path)
        if log is not None:
            log.write(f"starting over: removed {len(files)} files of the earlier run")
        return
    names = ("--resume latest", "--overwrite", "--out") if flags else ("resume='latest'", "overwrite=True", "out_dir")
    raise ArgumentError(
        f"{out_dir} holds an earlier training run ({len(files)} files: "
        f"{', '.join(os.path.basename(p) for p in files[:3])}"
        f"{', ...' if len(files) > 3 else ''}). Go on from it with {names[0]}, start over with {names[1]} (which "
        f"deletes them), or give another {names[2]}."
    )


def find_resume_point(out_dir, log=None):
    """The newest complete checkpoint under `out_dir`: ``(path, info)``, or ``(None, {})``.

    Truncated or damaged files newer than it are skipped with a warning naming them.
    """
    for path in resume_candidates(out_dir):
        try:
            return path, verify(path)
        except (CorruptModelFile, OSError) as error:
            message = f"Skipping checkpoint {path}: it is truncated or damaged ({error})"
            warnings.warn(message, stacklevel=2)
            if log is not None:
                log.write(message)
    return None, {}


def callback_states(callbacks):
    """The state of the stateful Keras callbacks among `callbacks` (see `CALLBACK_STATE`)."""
    states = {}
    for index, callback in enumerate(callbacks):
        names = CALLBACK_STATE.get(type(callback).__name__)
        if names:
            states[f"{index}:{type(callback).__name__}"] = {
                name: _plain(getattr(callback, name, None)) for name in names
            }
    return states


def restore_callback_states(callbacks, states):
    """Gives stateful callbacks back the state `callback_states` saved (a resumed run)."""
    for index, callback in enumerate(callbacks):
        state = (states or {}).get(f"{index}:{type(callback).__name__}")
        for name, value in (state or {}).items():
            setattr(callback, name, value)


def _plain(value):
    try:
        return float(value) if value is not None and not isinstance(value, (int, bool)) else value
    except (TypeError, ValueError):
        return None


def _log_rows(path):
    """The non-empty rows of a CSVLogger file, its header first; none if there is no file."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if row]


def truncate_log(path, epoch):
    """Drops the rows of epochs >= `epoch` from a CSVLogger file (a resumed run writes them again)."""
    rows = _log_rows(path)
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")
    kept = [rows[0]] + [row for row in rows[1:] if int(row[column]) < epoch]
    if len(kept) == len(rows):
        return
    with atomic_write(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
