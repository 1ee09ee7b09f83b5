"""``python -m ssd_keras_cli`` is ``ssd-keras``."""

import sys

from ssd_keras_cli.cli import main

sys.exit(main())
