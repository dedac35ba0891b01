"""Where claim history is kept: the :class:`HistoryStore` interface and its SQLite implementation.

A store keeps one :class:`Visit` per encounter id (recording the same encounter again replaces
its row, so a re-run or a resumed run never counts a visit twice) and answers one question: every
recorded visit of one patient. :class:`SQLiteHistory` is the embedded default (stdlib ``sqlite3``,
write-ahead log, schema versioned by ``PRAGMA user_version`` with forward-only migrations); a
server database shared by several machines implements the same three methods (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from ..evaluation.errors import PayerPolicyError

_T = TypeVar("_T")

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "HistoryStore", "SQLiteHistory", "Visit", "VisitLine"]


def _strs(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class VisitLine:
    """One line that went on a visit's claim for one payer (billable or expected to be denied).

    Kept so a later claim of the same patient, date of service and provider is checked against it
    for NCCI PTP pairs and MUE limits (docs/history.md). ``regions`` is empty when none was recorded.
    """

    payer: str
    code: str
    units: int
    modifiers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    regions: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    status: str = "billable"

    def to_mapping(self) -> dict[str, object]:
        """JSON-ready form (without the payer: the store keeps it beside the lines)."""
        return {
            "code": self.code,
            "units": self.units,
            "modifiers": list(self.modifiers),
            "regions": list(self.regions),
            "status": self.status,
        }

    @classmethod
    def from_mapping(cls, payer: str, data: dict[str, Any]) -> VisitLine:
        """Inverse of :meth:`to_mapping`."""
        return cls(payer, data["code"], int(data["units"]), data["modifiers"], data["regions"], data["status"])


def lines_to_json(lines: Iterable[VisitLine]) -> str:
    """The lines of one payer's claim as compact JSON text (how the stores keep them)."""
    return json.dumps([line.to_mapping() for line in lines], separators=(",", ":"))


def lines_from_json(payer: str, text: str) -> tuple[VisitLine, ...]:
    """Inverse of :func:`lines_to_json`."""
    return tuple(VisitLine.from_mapping(payer, item) for item in json.loads(text))


def claim_rows(visits: Iterable[Visit]) -> list[tuple[str, str, str]]:
    """(encounter, payer, lines as JSON) of every visit's claim lines, per payer: the claims table's rows."""
    return [(v.encounter, payer, lines_to_json(v.lines_for(payer) or ())) for v in visits for payer in sorted(v.payers)]


def attach_claims(visits: Iterable[Visit], claims: Iterable[tuple[str, str, str]]) -> list[Visit]:
    """The visits with the claim lines and payers the claims table's rows ``claims`` record for them."""
    payers: dict[str, list[str]] = {}
    lines: dict[str, list[VisitLine]] = {}
    for encounter, payer, text in claims:
        payers.setdefault(encounter, []).append(payer)
        lines.setdefault(encounter, []).extend(lines_from_json(payer, text))
    return [
        attrs.evolve(v, lines=tuple(lines.get(v.encounter, ())), payers=tuple(payers.get(v.encounter, ())))
        for v in visits
    ]


@attrs.frozen
class Visit:
    """One recorded visit: the facts later visits of the same patient are counted from.

    ``encounter`` is the encounter's ``id`` (the key: recording it again replaces the row);
    ``episode`` is ``""`` when the encounter named none. The counters are the values this visit
    was evaluated with (given in the encounter or derived from history), so a count a caller gave
    once carries forward: ``visit_number`` within (episode, discipline), ``prior_massage_visits``
    within the episode, ``ytd_pt_slp`` / ``ytd_ot`` the year-to-date therapy charges of the two
    Medicare buckets *before* this visit; ``pt_slp_charges`` / ``ot_charges`` are this visit's own
    billed therapy charges. ``npi`` is the rendering provider's NPI (None when not given);
    ``lines`` the lines that went on the visit's claim for each payer in ``payers`` (schema
    version 2: recording a visit replaces its lines for those payers and keeps the others').
    """

    encounter: str
    patient: str
    episode: str
    date: dt.date
    discipline: str
    massage: bool
    visit_number: int
    prior_massage_visits: int
    ytd_pt_slp: Decimal
    ytd_ot: Decimal
    pt_slp_charges: Decimal
    ot_charges: Decimal
    episode_start: dt.date | None = None
    injury_date: dt.date | None = None
    npi: str | None = None
    lines: tuple[VisitLine, ...] = ()
    payers: tuple[str, ...] = ()

    def lines_for(self, payer: str) -> tuple[VisitLine, ...] | None:
        """The lines of this visit's claim for ``payer``; None when none are recorded for it."""
        if payer not in self.payers:
            return None
        return tuple(line for line in self.lines if line.payer == payer)

    def with_claim(self, payer: str, lines: Iterable[VisitLine]) -> Visit:
        """The visit with ``lines`` as its claim's lines for ``payer`` (replacing that payer's, keeping the others')."""
        kept = tuple(line for line in self.lines if line.payer != payer)
        payers = tuple(sorted({*self.payers, payer}))
        return attrs.evolve(self, lines=kept + tuple(lines), payers=payers)

    @property
    def order(self) -> tuple[dt.date, str]:
        """Where the visit stands among the patient's visits: date of service, then encounter id."""
        return (self.date, self.encounter)


@runtime_checkable
class HistoryStore(Protocol):
    """What payerpolicy needs from a history database (SQLite by default; a server database alike).

    Implementations must make :meth:`record` atomic (all of the visits or none) and idempotent by
    ``Visit.encounter``, and safe when several processes record at once.
    """

    def visits(self, patient: str) -> list[Visit]:
        """Every recorded visit of ``patient``, in any order."""
        ...

    def record(self, visits: Iterable[Visit]) -> None:
        """Record ``visits`` in one transaction; a visit whose encounter id is recorded replaces it."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


#: ``PRAGMA application_id`` of a payerpolicy history file ("PPYH"): another SQLite file is refused.
APPLICATION_ID = 0x50505948

#: Forward-only migrations; migration ``n`` (1-based) takes ``user_version`` from n-1 to n.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE visits (
        encounter TEXT PRIMARY KEY,
        patient TEXT NOT NULL,
        episode TEXT NOT NULL,
        date TEXT NOT NULL,
        discipline TEXT NOT NULL,
        massage INTEGER NOT NULL,
        visit_number INTEGER NOT NULL,
        prior_massage_visits INTEGER NOT NULL,
        ytd_pt_slp TEXT NOT NULL,
        ytd_ot TEXT NOT NULL,
        pt_slp_charges TEXT NOT NULL,
        ot_charges TEXT NOT NULL,
        episode_start TEXT,
        injury_date TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX visits_by_patient ON visits (patient, date);
    """,
    """
    ALTER TABLE visits ADD COLUMN npi TEXT;
    CREATE TABLE claims (
        encounter TEXT NOT NULL,
        payer TEXT NOT NULL,
        lines TEXT NOT NULL,
        PRIMARY KEY (encounter, payer)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "encounter, patient, episode, date, discipline, massage, visit_number, prior_massage_visits,"
    " ytd_pt_slp, ytd_ot, pt_slp_charges, ot_charges, episode_start, injury_date, npi"
)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


class SQLiteHistory:
    """Claim history in one SQLite file (``payerpolicy batch --history FILE``, ``serve --history FILE``).

    Opens (or creates) the file, switches it to the write-ahead log and brings its schema up to
    :data:`SCHEMA_VERSION`. Writers take the database's write lock for one short transaction
    (``BEGIN IMMEDIATE``) and wait up to ``timeout`` seconds for another process's; readers never
    wait for writers. A file that is not a payerpolicy history database, or one written by a newer
    payerpolicy, is refused with one line naming it.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection, several threads (the HTTP service): one at a time
        if self.path.is_dir():
            raise PayerPolicyError(f"{self.path}: --history is a directory; expected a database file name")
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise PayerPolicyError(f"{self.path}: cannot open the history database ({exc})") from None
        self._timeout = timeout
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry(self._prepare)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise PayerPolicyError(f"{self.path}: not a usable payerpolicy history database ({exc})") from None
        except PayerPolicyError:
            self._db.close()
            raise

    def _retry(self, work: Callable[[], _T]) -> _T:
        """Run ``work``, again while another process holds a lock SQLite does not wait for.

        SQLite's busy timeout covers most waits, but not all: switching a new file to the
        write-ahead log, or a reader meeting another process's log recovery, can answer "database
        is locked" at once. Those are retried with a growing pause, up to the store's timeout.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.01
        while True:
            try:
                return work()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _prepare(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - a file system without shared memory
            raise PayerPolicyError(f"{self.path}: the history database cannot use the write-ahead log (journal mode {mode})")
        db.execute("PRAGMA synchronous = FULL")  # history is committed before a batch part is journalled
        db.execute("BEGIN IMMEDIATE")
        try:
            app = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if app != APPLICATION_ID and (app != 0 or tables):
                raise PayerPolicyError(f"{self.path}: not a payerpolicy history database (another SQLite file); choose another name")
            if version > SCHEMA_VERSION:
                raise PayerPolicyError(
                    f"{self.path}: history schema version {version} is newer than this payerpolicy knows ({SCHEMA_VERSION}); upgrade payerpolicy"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            if app != APPLICATION_ID:
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def visits(self, patient: str) -> list[Visit]:
        """Every recorded visit of ``patient``."""
        def read() -> tuple[list[Any], list[Any]]:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM visits WHERE patient = ?", (patient,)).fetchall()
            claims = self._db.execute(
                "SELECT claims.encounter, claims.payer, claims.lines FROM claims JOIN visits USING (encounter)"
                " WHERE visits.patient = ? ORDER BY claims.encounter, claims.payer",
                (patient,),
            ).fetchall()
            return rows, claims

        with self._lock:
            rows, claims = self._retry(read)
        visits = [
            Visit(
                encounter=r[0],
                patient=r[1],
                episode=r[2],
                date=dt.date.fromisoformat(r[3]),
                discipline=r[4],
                massage=bool(r[5]),
                visit_number=r[6],
                prior_massage_visits=r[7],
                ytd_pt_slp=Decimal(r[8]),
                ytd_ot=Decimal(r[9]),
                pt_slp_charges=Decimal(r[10]),
                ot_charges=Decimal(r[11]),
                episode_start=_date(r[12]),
                injury_date=_date(r[13]),
                npi=r[14],
            )
            for r in rows
        ]
        return attach_claims(visits, claims)

    def record(self, visits: Iterable[Visit]) -> None:
        """Record ``visits`` in one transaction (replacing any row of the same encounter id)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        visits = list(visits)
        rows = [
            (
                v.encounter, v.patient, v.episode, v.date.isoformat(), v.discipline, int(v.massage), v.visit_number,
                v.prior_massage_visits, str(v.ytd_pt_slp), str(v.ytd_ot), str(v.pt_slp_charges), str(v.ot_charges),
                v.episode_start.isoformat() if v.episode_start else None,
                v.injury_date.isoformat() if v.injury_date else None, v.npi, now,
            )
            for v in visits
        ]  # fmt: skip
        if not rows:
            return
        claims = claim_rows(visits)
        updates = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in (_COLUMNS + ", recorded_at").split(",")[1:])
        try:
            self._retry(lambda: self._locked_write(rows, updates, claims))
        except sqlite3.OperationalError as exc:
            raise PayerPolicyError(f"{self.path}: cannot write the history database ({exc})") from None

    def _locked_write(
        self, rows: Sequence[tuple[object, ...]], updates: str, claims: Sequence[tuple[str, str, str]]
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    f"INSERT INTO visits ({_COLUMNS}, recorded_at) VALUES ({', '.join('?' * 16)})"
                    f" ON CONFLICT (encounter) DO UPDATE SET {updates}",
                    rows,
                )
                self._db.executemany(
                    "INSERT INTO claims (encounter, payer, lines) VALUES (?, ?, ?)"
                    " ON CONFLICT (encounter, payer) DO UPDATE SET lines = excluded.lines",
                    claims,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self) -> int:
        """How many visits are recorded (every patient)."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM visits").fetchone()[0])

    def close(self) -> None:
        """Close the connection (the write-ahead log is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteHistory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
