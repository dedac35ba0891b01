"""``python -m payerpolicy``: the same as the ``payerpolicy`` command."""

import sys

from .cli import main

sys.exit(main())
