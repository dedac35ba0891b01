"""Claim history on a PostgreSQL server, for several machines sharing one history (extra ``payerpolicy[postgres]``).

``payerpolicy batch ... --history postgresql://user@host/db`` and ``serve --history URL`` use it;
in Python, :class:`PostgresHistory` is a :class:`~payerpolicy.history.HistoryStore` like the
SQLite file. The driver is psycopg 3, imported only here.
"""

from __future__ import annotations

import importlib
import threading
import urllib.parse
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any

from ..evaluation.errors import PayerPolicyError
from .store import Visit, attach_claims, claim_rows

__all__ = ["POSTGRES_MIGRATIONS", "PostgresHistory", "is_postgres_url", "redact"]

#: Forward-only migrations; the version is the single row of ``payerpolicy_history_version``.
POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE payerpolicy_visits (
        encounter TEXT PRIMARY KEY,
        patient TEXT NOT NULL,
        episode TEXT NOT NULL,
        date DATE NOT NULL,
        discipline TEXT NOT NULL,
        massage BOOLEAN NOT NULL,
        visit_number INTEGER NOT NULL,
        prior_massage_visits INTEGER NOT NULL,
        ytd_pt_slp NUMERIC NOT NULL,
        ytd_ot NUMERIC NOT NULL,
        pt_slp_charges NUMERIC NOT NULL,
        ot_charges NUMERIC NOT NULL,
        episode_start DATE,
        injury_date DATE,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX payerpolicy_visits_by_patient ON payerpolicy_visits (patient, date)
    """,
    """
    ALTER TABLE payerpolicy_visits ADD COLUMN npi TEXT;
    CREATE TABLE payerpolicy_claims (
        encounter TEXT NOT NULL,
        payer TEXT NOT NULL,
        lines TEXT NOT NULL,
        PRIMARY KEY (encounter, payer)
    )
    """,
)
_LOCK_KEY = 0x50505948  # pg_advisory_xact_lock key: one migration at a time
_COLUMNS = (
    "encounter", "patient", "episode", "date", "discipline", "massage", "visit_number", "prior_massage_visits",
    "ytd_pt_slp", "ytd_ot", "pt_slp_charges", "ot_charges", "episode_start", "injury_date", "npi",
)  # fmt: skip


def is_postgres_url(spec: str) -> bool:
    """Whether ``spec`` is a PostgreSQL connection URL (``postgresql://`` or ``postgres://``)."""
    return spec.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """``url`` without its password, for messages and the batch state file."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class PostgresHistory:
    """Claim history in PostgreSQL: the table ``payerpolicy_visits``, upserts by encounter id.

    Each :meth:`record` is one transaction writing its visits in encounter-id order (two writers
    with overlapping visits cannot deadlock); ``INSERT ... ON CONFLICT DO UPDATE`` makes it
    idempotent. The schema is created or migrated under an advisory lock when the store opens.
    """

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.url = redact(url)
        self.path = self.url  # what batch's state file and messages show
        self._lock = threading.Lock()
        try:
            psycopg: Any = importlib.import_module("psycopg")  # optional extra: typed as Any, no stubs needed
        except ImportError:
            raise PayerPolicyError(
                f"{self.url}: a PostgreSQL history needs psycopg, which is not installed: pip install 'payerpolicy[postgres]'"
            ) from None
        self._psycopg: Any = psycopg
        try:
            self._db: Any = psycopg.connect(url, connect_timeout=connect_timeout, autocommit=True)
        except psycopg.Error as exc:
            raise PayerPolicyError(f"{self.url}: cannot connect to the history database ({_first_line(exc)})") from None
        try:
            self._migrate()
        except psycopg.Error as exc:
            self._db.close()
            raise PayerPolicyError(f"{self.url}: cannot prepare the history database ({_first_line(exc)})") from None
        except PayerPolicyError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            self._db.execute("CREATE TABLE IF NOT EXISTS payerpolicy_history_version (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT version FROM payerpolicy_history_version").fetchone()
            version = row[0] if row else 0
            if row is None:
                self._db.execute("INSERT INTO payerpolicy_history_version VALUES (0)")
            if version > len(POSTGRES_MIGRATIONS):
                raise PayerPolicyError(
                    f"{self.url}: history schema version {version} is newer than this payerpolicy knows"
                    f" ({len(POSTGRES_MIGRATIONS)}); upgrade payerpolicy"
                )
            for number in range(version + 1, len(POSTGRES_MIGRATIONS) + 1):
                for statement in POSTGRES_MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("UPDATE payerpolicy_history_version SET version = %s", (number,))

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._lock:
            return int(self._db.execute("SELECT version FROM payerpolicy_history_version").fetchone()[0])

    def visits(self, patient: str) -> list[Visit]:
        """Every recorded visit of ``patient``."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM payerpolicy_visits WHERE patient = %s", (patient,)
            ).fetchall()
            claims = self._db.execute(
                "SELECT c.encounter, c.payer, c.lines FROM payerpolicy_claims c JOIN payerpolicy_visits v"
                " ON v.encounter = c.encounter WHERE v.patient = %s ORDER BY c.encounter, c.payer",
                (patient,),
            ).fetchall()
        return attach_claims(map(_visit, rows), claims)

    def record(self, visits: Iterable[Visit]) -> None:
        """Record ``visits`` in one transaction (replacing any row of the same encounter id)."""
        ordered = sorted(visits, key=lambda v: v.encounter)
        rows = [
            (v.encounter, v.patient, v.episode, v.date, v.discipline, v.massage, v.visit_number, v.prior_massage_visits,
             v.ytd_pt_slp, v.ytd_ot, v.pt_slp_charges, v.ot_charges, v.episode_start, v.injury_date, v.npi)
            for v in ordered
        ]  # fmt: skip
        claims = claim_rows(ordered)
        if not rows:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:]) + ", recorded_at = now()"
        sql = (
            f"INSERT INTO payerpolicy_visits ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
            f" ON CONFLICT (encounter) DO UPDATE SET {updates}"
        )
        try:
            with self._lock, self._db.transaction(), self._db.cursor() as cur:
                cur.executemany(sql, rows)
                if claims:
                    cur.executemany(
                        "INSERT INTO payerpolicy_claims (encounter, payer, lines) VALUES (%s, %s, %s)"
                        " ON CONFLICT (encounter, payer) DO UPDATE SET lines = excluded.lines",
                        claims,
                    )
        except self._psycopg.Error as exc:
            raise PayerPolicyError(f"{self.url}: cannot write the history database ({_first_line(exc)})") from None

    def count(self) -> int:
        """How many visits are recorded (every patient)."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM payerpolicy_visits").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> PostgresHistory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _visit(r: Any) -> Visit:
    return Visit(
        encounter=r[0], patient=r[1], episode=r[2], date=r[3], discipline=r[4], massage=bool(r[5]),
        visit_number=r[6], prior_massage_visits=r[7], ytd_pt_slp=_amount(r[8]), ytd_ot=_amount(r[9]),
        pt_slp_charges=_amount(r[10]), ot_charges=_amount(r[11]), episode_start=r[12], injury_date=r[13],
        npi=r[14],
    )  # fmt: skip


def _amount(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

