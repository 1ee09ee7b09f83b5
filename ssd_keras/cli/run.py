"""``ssd-keras``: train, evaluate, predict, sample weights, and the demo, from the shell.

Run ``ssd-keras <command> --help`` for every flag. Errors print one line naming the file or
argument at fault; the exit status follows the error's class (`ssd_keras.errors`): 2 for
unusable arguments (`ArgumentError`, and argparse's own), 128 plus the signal's number
when training stopped on SIGINT or SIGTERM (`TrainingInterrupted`), 1 for every other
error of the package and for files that cannot be read or written.
"""

import os
import sys
import warnings

from ssd_keras.cli.commands import COMMANDS
from ssd_keras.cli.parser import build_parser
from ssd_keras.errors import (
    ArgumentError,
    DatasetError,
    DegenerateBatchError,
    DegenerateBoxError,
    SSDKerasError,
    TrainingInterrupted,
    WorkerError,
)

# Errors about the data, printed with their class name ("DatasetError: Cannot decode ...").
_DATA_ERRORS = (DatasetError, DegenerateBoxError, DegenerateBatchError, WorkerError)


def _warning_printer(command):
    """`warnings.showwarning` for the command line: one line per warning ("ssd-keras predict:
    warning: Skipped ..."), not Python's two with the file, line number and source line."""

    def show(message, category, filename, lineno, file=None, line=None):
        kind = "" if category is UserWarning else f"{category.__name__}: "
        print(f"ssd-keras {command}: warning: {kind}{message}", file=file or sys.stderr, flush=True)

    return show


def main(argv=None):
    """Entry point of ``ssd-keras``; returns the exit status.

    Args:
        argv: the arguments after ``ssd-keras`` (default: ``sys.argv[1:]``).

    Returns:
        0 on success; 1, 2 or 128 plus a signal's number on an error (module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ssd_keras.utils.backend import (
        hide_tensorflow_start_up_lines,
        leave_tensorflow_unimported,
        select_backend,
        use_jax_compilation_cache,
    )

    if args.backend:
        try:
            select_backend(args.backend)
        except ValueError as error:
            parser.error(str(error))
    use_jax_compilation_cache()
    hide_tensorflow_start_up_lines()
    leave_tensorflow_unimported()
    prefix = f"ssd-keras {args.command}"
    try:
        with warnings.catch_warnings():  # puts Python's printer back afterwards
            warnings.showwarning = _warning_printer(args.command)
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("ssd-keras: interrupted", file=sys.stderr)
        return 130
    except TrainingInterrupted as error:
        print(f"{prefix}: {error}", file=sys.stderr)
        return 128 + error.signum  # as a shell reports a process ended by the signal
    except ArgumentError as error:
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return 2
    except _DATA_ERRORS as error:
        print(f"{prefix}: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except (SSDKerasError, ValueError, OSError) as error:
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return 1
