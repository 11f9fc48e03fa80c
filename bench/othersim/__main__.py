"""``python -m bench.othersim OUT --n N ...``: see :mod:`bench.othersim`."""

import sys

from bench.othersim.cli import main

sys.exit(main())
