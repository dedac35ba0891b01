"""Batch input in patient and date order, with counters derived from claim history (``--history``).

The records are first copied into a scratch SQLite file in ``OUT.partial/`` with their sort key
(patient, date of service, encounter id, input position); SQLite's sorter spills to disk, so a
long input never has to fit in memory. They are then read back in that order, and the parent
process derives each record's counters (:class:`payerpolicy.history.Tracker`) before the chunk
goes to a worker: workers need no history and no ordering of their own. The visits of a chunk
are recorded in the history store only when the chunk's part is safely written (before its
journal line), so a resumed or repeated run never counts a visit twice.

A chunk never ends inside one patient's date of service: the worker evaluates those records in
order and hands each one's claim lines to the later ones (same-day NCCI PTP pairs and MUE limits),
since the parent cannot know a record's lines before it is evaluated. A chunk may therefore hold
a few records more than the chunk size.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..evaluation.model import Encounter
from ..formats.io import read_encounter_data
from ..history import Tracker, Visit
from .chunks import Chunk, _decode
from .records import iter_records

ORDER_FILE = "order.sqlite"


def _key_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _sort_key(kind: str, payload: Any) -> tuple[str | None, str | None, str | None]:
    """(patient, date of service, id) as far as they can be read; None where not (the worker reports why)."""
    try:
        if kind == "json":
            data = json.loads(payload)
        elif kind == "file":
            data = read_encounter_data(payload)
        elif kind == "data":
            data = payload
        else:
            return None, None, None
    except Exception:  # a record that cannot be read sorts first; its error row says why
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    return _key_text(data.get("patient")), _key_text(data.get("date_of_service")), _key_text(data.get("id"))


def _build(src: Path, path: Path) -> sqlite3.Connection:
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA temp_store = FILE")
    db.execute("PRAGMA cache_size = -16384")  # 16 MiB: beyond it the sorter works in temporary files
    db.execute("CREATE TABLE records (patient TEXT, date TEXT, ident TEXT, position INTEGER, item BLOB)")
    db.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    for position, source, kind, payload in iter_records(src):
        patient, day, ident = _sort_key(kind, payload)
        batch.append((patient, day, ident, position, pickle.dumps((source, kind, payload), protocol=5)))
        if len(batch) >= 1000:
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", batch)
            batch = []
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", batch)
    db.execute("COMMIT")
    return db


def ordered_chunks(
    src: Path, work: Path, size: int, skip: int, tracker: Tracker, pending: dict[int, list[Visit]]
) -> Iterator[Chunk]:
    """Chunks of ``src`` in (patient, date, id, input position) order, from the ``skip``-th on.

    Records without a readable patient key come first, in input order. Each chunk carries the
    records' input positions and their history-derived counters; the visits to record when the
    chunk is committed are put in ``pending`` under the chunk's ``first``.
    """
    db = _build(src, work / ORDER_FILE)
    try:
        rows = db.execute(
            "SELECT position, patient IS NOT NULL, patient, date, item FROM records"
            " ORDER BY patient IS NOT NULL, patient, date, ident, position LIMIT -1 OFFSET ?",
            (skip,),
        )
        first = skip
        items: list[tuple[str, str, Any]] = []
        positions: list[int] = []
        derived: list[Any] = []
        visits: list[Visit] = []
        day_of: tuple[str, str | None] | None = None  # the (patient, date) of the last record taken
        for position, has_patient, patient, date, blob in rows:
            here = (patient, date) if has_patient else None
            if len(items) >= size and (here is None or here != day_of):
                # a chunk is full, but never ends inside one patient's date of service: its records
                # are evaluated in order by one worker, each seeing the lines of the ones before it
                pending[first] = visits
                yield Chunk(first, tuple(items), tuple(positions), tuple(derived))
                first += len(items)
                items, positions, derived, visits = [], [], [], []
            day_of = here
            source, kind, payload = pickle.loads(blob)
            found = None
            if has_patient:  # without a patient key history has nothing to say: no need to read it here
                try:
                    data, _ = _decode(source, kind, payload)
                    found = tracker.derive(Encounter.from_mapping(data, catalogue=tracker.engine.catalogue))
                except Exception:  # not a valid encounter: the worker writes its error row
                    found = None
            items.append((source, kind, payload))
            positions.append(position)
            derived.append(found)
            if found is not None and found.visit is not None:
                visits.append(found.visit)
        if items:
            pending[first] = visits
            yield Chunk(first, tuple(items), tuple(positions), tuple(derived))
    finally:
        db.close()
