"""The exceptions of `ssd_keras`, one hierarchy under `SSDKerasError`.

Each class also derives from the built-in exception that callers of the original caught
(`ValueError` for bad arguments, `OSError` for files that cannot be written, ...), so
``except ValueError`` keeps working where it did. The command line maps them to exit
statuses by class: `ArgumentError` is 2 (unusable arguments, found before any work, as
argparse's), `TrainingInterrupted` is 128 plus the signal's number, every other
`SSDKerasError` is 1.

Examples:
    >>> from ssd_keras.errors import DatasetError, SSDKerasError
    >>> issubclass(DatasetError, SSDKerasError)
    True
"""


class SSDKerasError(Exception):
    """The base class of every error this package raises on purpose."""


class ArgumentError(SSDKerasError, ValueError):
    """Arguments that cannot be used together or with the files they name, found before any
    work starts (``ssd-keras`` exits with status 2, as for argparse's errors)."""


class ClassesError(ArgumentError):
    """A class-name specification that cannot be used (an empty list, repeated names, a
    class-names file that does not exist)."""


class BackendError(SSDKerasError, RuntimeError):
    """A feature was used under a Keras backend that does not offer it."""


class DatasetError(SSDKerasError):
    """A data set that cannot be read or used: missing or unreadable files, bad annotations,
    an empty labels file."""


class ClassIdError(DatasetError, ValueError):
    """Boxes whose class id is not one of the model's (a labels file with more classes than
    the class names given), found before training starts."""


class DegenerateBoxError(SSDKerasError):
    """A ground-truth box has ``xmax <= xmin`` or ``ymax <= ymin``.

    Such a box has no area; encoding it would give infinite or NaN targets and a NaN
    loss. A frequent cause is a wrong `input_format` column order in `parse_csv`.
    """


class DegenerateBatchError(SSDKerasError):
    """A batch that cannot be formed: no image left, or images of different sizes."""


class WorkerError(SSDKerasError, RuntimeError):
    """A batch worker process died, or raised an exception that cannot be re-raised as is."""


class CorruptModelFile(SSDKerasError, ValueError):
    """A file is not a complete `.keras` archive (truncated, damaged, or something else)."""


class NotAModelError(SSDKerasError, ValueError):
    """A file given as a model is not a Keras model file."""


class CheckpointError(SSDKerasError, OSError):
    """A model file could not be written; the file that was there before is unchanged."""


class TrainingError(SSDKerasError, RuntimeError):
    """Training stopped on a fault; the message says where, why, and what was kept."""


class TrainingInterrupted(SSDKerasError):
    """Training stopped on SIGINT or SIGTERM after writing a resume point.

    Args:
        message: what happened and where training goes on from.
        signum: the signal's number (`signal.SIGINT` or `signal.SIGTERM`).
    """

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum
