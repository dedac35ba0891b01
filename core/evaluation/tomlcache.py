"""Parsed TOML kept between runs: policies, the code catalogue and the denial terms parsed once per change.

A cold ``payerpolicy check`` parses the payer's policy, the policies it extends, ``codes.toml`` and
``adjustments.toml``; importing :mod:`tomllib` and parsing them is a good part of its start-up. The
parsed data is kept in one file in the user's cache directory, keyed by the file's path and its
identity and change stamps (device, inode, size, modification and status-change times in
nanoseconds): an edit, a replacement, a ``chmod`` or a ``touch`` reads the file again, and a file
changed in the last two seconds is not cached at all (two writes within one tick of the file
system's clock could leave every stamp alike). The cached
form is :mod:`marshal` data (dates, times and date-times as ISO text put back on loading); a
missing, unreadable, unwritable or damaged cache is silently not used, so the results never depend
on it.

``$PAYERPOLICY_CACHE_DIR`` names the directory (empty: no cache); by default it is the platform's
user cache directory (``$XDG_CACHE_HOME/payerpolicy`` or ``~/.cache/payerpolicy`` on Linux).
"""

from __future__ import annotations

import _thread
import contextlib
import datetime as dt
import marshal
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .shipped import package_file, read_package_text

__all__ = ["CACHE_DIR_ENV", "cache_dir", "load_package_toml", "load_toml"]

#: Environment variable naming the cache directory; set and empty, nothing is cached.
CACHE_DIR_ENV = "PAYERPOLICY_CACHE_DIR"
#: Format of the cached data (the file name carries it and the Python version: marshal's format
#: and tomllib's answers may change with Python).
_FORMAT = 1
#: Most files kept (the newest); entries whose file changed or is gone are dropped on writing.
MAX_ENTRIES = 128
#: A file changed less than this long ago (nanoseconds) is not cached: a second write within the
#: file system's clock tick could leave every stamp as it was (git's "racily clean" entries).
RACY_NS = 2_000_000_000

_Stamp = tuple[int, int, int, int, int]
#: path -> (stamp, marshalled payload), as read from the cache file (once per process).
_index: dict[str, tuple[_Stamp, bytes]] | None = None
_index_file: str | None = None


def cache_dir() -> str | None:
    """The directory of the cache (``$PAYERPOLICY_CACHE_DIR``, else the user cache directory); None: no cache."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return configured.strip() or None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "").strip()
        return os.path.join(base, "payerpolicy", "Cache") if base else None
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "payerpolicy")
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    if not base or not os.path.isabs(base):
        if home == "~":
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "payerpolicy")


def _cache_file() -> str | None:
    directory = cache_dir()
    if directory is None:
        return None
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return os.path.join(directory, f"toml-py{version}-v{_FORMAT}.marshal")


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_index(file: str) -> dict[str, tuple[_Stamp, bytes]]:
    try:
        with open(file, "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if isinstance(k, str) and isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], bytes)
    }


def _index_for(file: str) -> dict[str, tuple[_Stamp, bytes]]:
    global _index, _index_file
    if _index is None or _index_file != file:
        _index, _index_file = _read_index(file), file
    return _index


# ---- the cached form: TOML's values are marshal's, but for dates and times

_DATE_KINDS: dict[type, tuple[str, Callable[[str], Any]]] = {
    dt.datetime: ("datetime", dt.datetime.fromisoformat),  # before date: a datetime is a date
    dt.date: ("date", dt.date.fromisoformat),
    dt.time: ("time", dt.time.fromisoformat),
}
_FROM_TEXT = {name: parse for name, parse in _DATE_KINDS.values()}


def _encode(data: Any) -> bytes:
    """Marshal ``data`` with each date, time and date-time replaced by None and listed (path, kind, ISO text)."""
    found: list[tuple[tuple[str | int, ...], str, str]] = []

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        kind = _DATE_KINDS.get(type(value))
        if kind is not None:
            found.append((path, kind[0], value.isoformat()))
            return None
        return value

    return marshal.dumps((walk(data, ()), found))


def _decode(payload: bytes) -> dict[str, Any]:
    data, found = marshal.loads(payload)
    for path, kind, text in found:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = _FROM_TEXT[kind](text)
    if not isinstance(data, dict):
        raise TypeError("not a table")
    return data


def _write(file: str, index: dict[str, tuple[_Stamp, bytes]]) -> None:
    """Write the index (current entries only, the newest :data:`MAX_ENTRIES`) atomically; errors are ignored."""
    kept: dict[str, tuple[_Stamp, bytes]] = {}
    for path, entry in list(index.items())[-MAX_ENTRIES:]:
        try:
            if _stamp(os.stat(path)) == entry[0]:
                kept[path] = entry
        except OSError:
            continue
    tmp = f"{file}.{os.getpid()}-{_thread.get_ident()}.tmp"  # processes and threads write their own, then rename
    try:
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(kept))
        os.replace(tmp, file)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_toml(path: str, st: os.stat_result, read: Callable[[], str]) -> dict[str, Any]:
    """``tomllib.loads(read())`` for the file at ``path`` whose ``os.stat`` is ``st``, from the cache when current.

    ``read`` gives the file's text (it raises what reading raises); a TOML error propagates as
    ``tomllib.TOMLDecodeError`` and nothing is cached.
    """
    file = _cache_file()
    key = os.path.abspath(path)
    stamp = _stamp(st)
    if file is not None:
        index = _index_for(file)
        entry = index.get(key)
        if entry is not None and entry[0] == stamp:
            try:
                return _decode(entry[1])
            except Exception:  # a damaged entry: parse again (and replace it)
                pass
    import tomllib

    data = tomllib.loads(read())
    if file is not None and time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS:
        try:
            payload = _encode(data)
        except ValueError:  # pragma: no cover - TOML values are all marshal's or dates
            return data
        global _index, _index_file
        index = {**_read_index(file), **_index_for(file)}  # what other processes cached meanwhile, too
        index.pop(key, None)
        index[key] = (stamp, payload)
        _index, _index_file = index, file
        _write(file, index)
    return data


def load_package_toml(package: str, *names: str) -> dict[str, Any]:
    """The parsed TOML file ``names`` inside ``package`` (from the cache when current)."""
    file = package_file(package, *names)
    if file is None:
        import tomllib

        return tomllib.loads(read_package_text(package, *names))
    return load_toml(file, os.stat(file), lambda: read_package_text(package, *names))
