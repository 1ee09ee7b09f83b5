"""``python -m ssd_keras.cli`` is ``ssd-keras``."""

import sys

from ssd_keras.cli.run import main

sys.exit(main())
