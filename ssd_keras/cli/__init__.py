"""The ``ssd-keras`` command: `parser` (commands and flags), `commands` (what each does,
through the package's Python API), `run` (`main`: the exit status by error class)."""

from ssd_keras.cli.run import main

__all__ = ["main"]
