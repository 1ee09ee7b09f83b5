"""Files written so that a crash, a kill or a full disk never leaves half of one.

`atomic_write(path)` yields a temporary path in the target's folder; when the block
ends normally the file is flushed to the disk and renamed over `path` in one step
(`os.replace`), and the rename flushed too; when it raises (an error, Ctrl-C), the
temporary file is removed and `path` is as it was. A reader sees the old file or the
new one, never half of one. Every file the project writes for keeps (model and weight
files, HDF5 data sets, checkpoints, logs it rewrites, the JSON results of `evaluate`, `predict`
and the demo: `write_json`) goes through it. `open_hdf5` opens an HDF5 file for reading with errors that name it.
"""

import contextlib
import json
import math
import os

import h5py


def temporary_name(path, suffix=""):
    """The temporary file of `atomic_write` for `path`: hidden, in the same folder, named
    after this process (so that one left by a killed process can be told apart)."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp{suffix}")


@contextlib.contextmanager
def atomic_write(path, suffix=""):
    """Yields a temporary path to write; renames it over `path` when the block succeeds.

    Args:
        path: the file to write.
        suffix: ends the temporary name (some writers insist on an extension, e.g. '.keras').
    """
    temporary = temporary_name(path, suffix)
    try:
        yield temporary
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
        sync_folder(os.path.dirname(os.path.abspath(path)))
    except BaseException:
        remove_quietly(temporary)
        raise


def write_json(path, value, indent=None):
    """`json.dump` of `value` to `path` through `atomic_write`: a crash, or a value that
    cannot be written halfway through, leaves the earlier file as it was. A non-finite
    number (NaN, an infinite box coordinate) is written as ``null``: the file stays JSON,
    which has no ``NaN`` or ``Infinity``."""
    with atomic_write(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(_finite(value), f, indent=indent, allow_nan=False)


def _finite(value):
    """`value` with every non-finite float replaced by None, in nested dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def sync_folder(folder):
    """Flushes a folder's entries (a rename) to the disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_quietly(path):
    """Removes `path` if it exists; does nothing otherwise."""
    try:
        os.remove(path)
    except OSError:
        pass


def open_hdf5(path, what, missing_error, unreadable_error):
    """`h5py.File(path, "r")`, or `missing_error` ("<what> not found: <path>") when there is no
    such file and `unreadable_error` ("<path> is not a readable HDF5 file: ...") when it is
    not HDF5. `what` names the file's role ('Weights file', 'HDF5 data set')."""
    if not os.path.isfile(path):
        raise missing_error(f"{what} not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise unreadable_error(f"{path} is not a readable HDF5 file: {error}") from None
