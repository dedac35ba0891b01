"""NCCI edits as rule kinds any payer can load: procedure-to-procedure pairs and MUE limits.

Rule kinds (registered through ``payerpolicy_rule_kinds`` like every other kind):

``ncci_ptp``
    CMS procedure-to-procedure edits (NCCI-01/02). When both codes of an edit in
    force on the date of service are on the claim, the column-2 line is denied (status
    ``not_billable``, finding ``NCCI_PTP_DENIAL`` naming the pair, the modifier indicator, the CMS
    rationale and the table version) unless the indicator is 1 and a distinct-service modifier is
    justified: a different region documented on both lines (``settings.distinct_modifier_region``)
    or separate time blocks (``settings.distinct_modifier_time``). Indicator 0 is never bypassed;
    indicator 9 (not applicable) is ignored.

    Phases: **screen** denies column-2 lines before units are computed, so their minutes are not
    counted (CORE-TIME-04), when the column-1 line is sure to be billed; **modifiers** adds the
    distinct-service modifier on the column-2 line of a justified indicator-1 pair; **adjust** is a
    safety net for pairs still on the claim and not justified (a column-1 line whose units were
    uncertain before units were computed, or lines changed by a hook after screening).

``ncci_mue``
    Medically unlikely edits (NCCI-03): units above the MUE in force on the date of service. MAI 1
    is a claim-line edit, MAI 2 an absolute per-date-of-service edit, MAI 3 a clinical
    per-date-of-service edit. MAIs listed in the rule's ``cap_mai`` (default MAI 2) cap the units
    at the MUE (a line with MUE 0 is not billable); the others leave the units and flag the lines
    as expected denials. Phase: **adjust**.

**Tables are data.** Each table is one tab-separated file (format ``payerpolicy-ncci 1``) whose
``#`` header records the source, the version and the SHA-256 of the data rows::

    #payerpolicy-ncci 1
    #table<TAB>ptp
    #source<TAB>CMS Medicare NCCI practitioner PTP edits ...
    #version<TAB>CMS practitioner PTP v301r0 / 2024-07-01; curated subset
    #sha256<TAB>(hex digest of the column line and rows, each ending in a newline)
    column_1<TAB>column_2<TAB>effective<TAB>deletion<TAB>indicator<TAB>rationale
    98940<TAB>97140<TAB><TAB><TAB>1<TAB>Standards of medical/surgical practice

    code<TAB>mue<TAB>mai<TAB>rationale<TAB>effective<TAB>deletion      (the MUE table's columns)

Dates are ISO (``2019-12-31``) or empty (no data: in force from the start / not deleted). A row is
in force on a day when ``effective <= day <= deletion`` (the deletion date is taken as the last day
the edit applies; no CMS file documentation found so far says whether it is the last day in effect
or the first day not in effect, so this reading is unconfirmed). A table is read once per process
(:func:`load_ptp` / :func:`load_mue`, cached by path): the shipped subset into dicts, a table file
into the index arrays below.

**Binary PTP index.** A full PTP table (2.6 million rows) is too big to parse per process, so the
importer (and :func:`write_ptp_index`, or ``payerpolicy ncci index <table>``, on any ``ptp.tsv``)
writes ``ptp.idx`` next to it; the text table stays the readable, curated source and the index is
derived from it. Format version 2: a magic line, the version, a JSON header (the table's
``#sha256``, its file size and modification time, the row count, the byte order, the code and
rationale lists, the SHA-256 of the arrays) and four arrays in native byte order. Codes are numbered;
rows are grouped by the lower code number of their pair (a counting sort, no sort over all rows):
``start`` is the offset table (code -> its slice of rows), ``pair`` holds the other code's number
times 2 plus the direction (sorted within a slice, rows of one key in file order), ``record`` one
64-bit word per row (effective day << 24 | deletion day << 2 | indicator code) and ``rationale``
the rationale numbers. A lookup is two dict lookups, one bisection of one slice (a few hundred
entries) and a look at the matching records; only the winning row becomes a :class:`PtpRow`. The
same selection rules apply as on the text form (in force on the day, indicator 9 ignored, latest
effective date, then indicator 0 before 1, then the row whose column 1 is the first code asked
for, then file order).

Trust: the index is used when it records this table's ``#sha256``, format version and byte order;
when the table file's size or modification time differ from the ones recorded (a copy), the rows
are hashed once more before the index is trusted, so rows edited behind the index fail with the
table's own "rows do not match the header's sha256" error. A stale index (other rows, an older
format version) is rebuilt from the text and rewritten (left alone if the directory is read-only);
a table without an index is parsed into the same arrays in memory (nothing written). An index that
is current but truncated or corrupt (bad magic, short arrays, arrays not matching their SHA-256)
raises :class:`NcciIndexError` naming the file. The shipped curated subset has no index (it is
parsed into dicts).

Which table: the rule's ``table`` parameter, a path to a file or to a directory holding
``ptp.tsv`` / ``mue.tsv``; ``"builtin"`` (the default) means ``$PAYERPOLICY_NCCI_DIR`` when that
environment variable is set, else the curated subset shipped in ``payerpolicy/policies/ncci/``
(a curated subset of CMS rows).

Layer: reference data beside the evaluation core; it imports only :mod:`payerpolicy.evaluation`.
Modules: ``table`` (the file format: row types, parsing, writing), ``index`` (the binary PTP index),
``tables`` (finding and loading tables), ``kinds`` (the two rule kinds, registered as a builtin plugin),
``importer`` (``payerpolicy ncci import``: CMS's own files to tables), ``synth`` (full-size synthetic
tables for benchmarks).
"""

from __future__ import annotations

from .index import PtpTable, parse_ptp, ptp_index_path, write_ptp_index
from .kinds import NCCI_KINDS, apply_mue, payerpolicy_rule_kinds
from .table import (
    ENV_DIR,
    FORMAT,
    MUE_COLUMNS,
    MUE_FILE,
    PTP_COLUMNS,
    PTP_FILE,
    PTP_INDEX_SUFFIX,
    MueRow,
    MueTable,
    NcciIndexError,
    NcciTableError,
    PtpRow,
    TableInfo,
    parse_mue,
    write_table,
)
from .tables import load_mue, load_ptp, mue_table_for, ptp_table_for, resolve_table

__all__ = [
    "ENV_DIR",
    "FORMAT",
    "MUE_COLUMNS",
    "MUE_FILE",
    "NCCI_KINDS",
    "PTP_COLUMNS",
    "PTP_FILE",
    "PTP_INDEX_SUFFIX",
    "MueRow",
    "MueTable",
    "NcciIndexError",
    "NcciTableError",
    "PtpRow",
    "PtpTable",
    "TableInfo",
    "apply_mue",
    "load_mue",
    "load_ptp",
    "mue_table_for",
    "parse_mue",
    "parse_ptp",
    "payerpolicy_rule_kinds",
    "ptp_index_path",
    "ptp_table_for",
    "resolve_table",
    "write_ptp_index",
    "write_table",
]
