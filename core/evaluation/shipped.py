"""Files inside an installed package (the shipped policies, code catalogue and NCCI tables, a plugin's policy).

Read straight from the package's directory when it has one (a wheel or an editable install), which
spares a cold ``payerpolicy check`` the import of :mod:`importlib.resources` (it pulls in tempfile,
shutil, zipfile and more); anything else (a package inside a zip file) goes through
:mod:`importlib.resources`, with its answers and its errors.
"""

from __future__ import annotations

import importlib
import os

__all__ = ["package_file", "package_has_file", "read_package_text"]


def _on_disk(package: str, names: tuple[str, ...]) -> str | None:
    """The file ``names`` in a directory of ``package`` (the first of its ``__path__`` that has it)."""
    module = importlib.import_module(package)
    for directory in getattr(module, "__path__", None) or ():
        path = os.path.join(directory, *names)
        if os.path.isfile(path):
            return path
    return None


def package_file(package: str, *names: str) -> str | None:
    """The path of the file ``names`` inside ``package`` when it is a file on disk (None inside a zip, or missing)."""
    return _on_disk(package, names)


def read_package_text(package: str, *names: str) -> str:
    """The UTF-8 text of the file ``names`` (``"ncci", "ptp.tsv"``) inside ``package``."""
    path = _on_disk(package, names)
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    from importlib import resources

    return resources.files(package).joinpath(*names).read_text("utf-8")


def package_has_file(package: str, *names: str) -> bool:
    """Whether ``package`` holds the file ``names``."""
    if _on_disk(package, names) is not None:
        return True
    from importlib import resources

    return resources.files(package).joinpath(*names).is_file()
