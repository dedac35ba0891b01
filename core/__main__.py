"""``python -m payerpolicy``: the same as the ``payerpolicy`` command."""

import gc

gc.disable()  # importing the command line allocates thousands of objects that live as long as the process
from .cli import _exit, main  # noqa: E402

gc.enable()
_exit(main())
