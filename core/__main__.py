"""``python -m payerpolicy``: the same as the ``payerpolicy`` command."""

import gc
import sys

gc.disable()  # importing the command line allocates thousands of objects that live as long as the process
from .cli import main  # noqa: E402

gc.enable()
sys.exit(main())
