"""`.keras` files written so that a crash or a full disk never leaves a broken one, with
the project's own information stored inside, and checked before they are trusted.

A `.keras` file is a zip archive. Keras reads the members it wrote (``config.json``,
``metadata.json``, ``model.weights.h5``) and ignores others, so the class names and,
in checkpoints, the training state travel in a member of their own, ``ssd_keras.json``.

`save_model` writes a temporary file in the same folder, adds that member, flushes it
to the disk and renames it over the target in one step (`os.replace`): a reader sees
the old file or the new one, never half of one. `verify` checks a file's zip structure
and every member's CRC before a resume trusts it.
"""

import json
import os
import zipfile

from ssd_keras.errors import CheckpointError, CorruptModelFile
from ssd_keras.utils.files import atomic_write, remove_quietly

INFO_MEMBER = "ssd_keras.json"
KERAS_MEMBERS = ("config.json", "model.weights.h5")


def save_model(model, path, class_names=None, info=None):
    """Writes `model` to the `.keras` file `path` atomically, with its class names and
    `info` stored in it (`read_info` reads them back; ``ssd-keras predict`` and
    ``evaluate`` name the classes after them).

    Args:
        model: a Keras model (its optimizer state is saved too, as `model.save` does).
        path: the target; its folder must exist.
        class_names: the class names, 'background' first, or None.
        info: a JSON-able dict of more to store (a checkpoint's training state), or None.

    Returns:
        `path`.

    Raises:
        CheckpointError: naming the file and the cause (no space left, no permission...);
            `path` is then as it was, and no temporary file is left behind.
    """
    info = dict(info or {}, **({"class_names": list(class_names)} if class_names is not None else {}))
    try:
        with atomic_write(path, ".keras") as temporary:
            model.save(temporary)
            if info:
                with zipfile.ZipFile(temporary, "a") as archive:
                    archive.writestr(INFO_MEMBER, json.dumps(info))
    except OSError as error:
        kept = "the previous file is unchanged" if os.path.exists(path) else "nothing was written"
        raise CheckpointError(error.errno, f"Cannot write {path}: {error.strerror or error} ({kept})") from error
    return path


def read_info(path):
    """The `info` stored by `save_model` (``{}`` if there is none or the file is unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if INFO_MEMBER in archive.namelist():
                return json.loads(archive.read(INFO_MEMBER))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        pass
    return {}


def input_size(path):
    """``(height, width)`` of the images the model in `.keras` file `path` takes, read from its
    config without loading it; None if the file does not say."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        layers = config["config"]["layers"]
        shape = next(layer["config"]["batch_shape"] for layer in layers if layer["class_name"] == "InputLayer")
        return int(shape[1]), int(shape[2])
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError, IndexError, StopIteration):
        return None


def verify(path, require_info=False):
    """Checks that `path` is a complete `.keras` archive; returns its stored info.

    Raises:
        FileNotFoundError: if it does not exist.
        CorruptModelFile: naming the file and what is wrong (not a zip archive, a
            truncated or damaged member, a member missing).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            if damaged is not None:
                raise CorruptModelFile(f"{path}: member {damaged} is damaged (CRC mismatch)")
            missing = [name for name in KERAS_MEMBERS + ((INFO_MEMBER,) if require_info else ()) if name not in names]
            if missing:
                raise CorruptModelFile(f"{path}: not a complete .keras archive (missing {', '.join(missing)})")
            return json.loads(archive.read(INFO_MEMBER)) if INFO_MEMBER in names else {}
    except CorruptModelFile:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError) as error:
        raise CorruptModelFile(f"{path}: not a .keras archive, or a truncated one ({error})") from None


def ensure_writable(folder):
    """Creates `folder` if needed and checks that files can be written in it.

    Raises:
        CheckpointError: naming the folder and the cause.
    """
    probe = os.path.join(folder, f".write_test.{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.remove(probe)
    except OSError as error:
        remove_quietly(probe)
        raise CheckpointError(
            error.errno, f"Cannot write to the output folder {folder}: {error.strerror or error}"
        ) from error


def remove_stale_temporaries(folder):
    """Removes the temporary files that writers killed halfway left in `folder` (those of
    processes that no longer run); returns their paths."""
    import glob
    import re

    removed = []
    for path in glob.glob(os.path.join(folder, ".*.tmp.keras")):  # `file_utils.temporary_name`
        match = re.search(r"\.(\d+)\.tmp\.keras$", path)
        if match and not _running(int(match.group(1))):
            remove_quietly(path)
            removed.append(path)
    return removed


def _running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
