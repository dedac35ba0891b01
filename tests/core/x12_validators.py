"""Two independent 837P validators for the tests: pyx12 (in process) and linuxforhealth-x12 (a subprocess).

linuxforhealth-x12 parses 005010X222A1 into Pydantic models, loop by loop, with its own segment
and code checks (a second implementation, not derived from pyx12's maps). It is written for
Pydantic 1; fhir.resources needs Pydantic 2, whose ``pydantic.v1`` package is the Pydantic 1 API.
The library therefore runs in a subprocess that points ``pydantic`` at ``pydantic.v1``, so the test
process keeps Pydantic 2. Its ``GenderCode`` enumeration lists only ``F`` and ``M`` for ``DMG03``,
while the TR3 (and pyx12) also allow ``U`` (unknown, the placeholder default); only for this library,
``DMG*...*U`` is shown as ``F``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Mapping

import pytest

_LFH_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import pydantic.v1
sys.modules["pydantic"] = pydantic.v1
from linuxforhealth.x12.io import X12ModelReader
result = {}
for path in sys.argv[1:]:
    try:
        with X12ModelReader(path) as reader:
            models = [m.dict() for m in reader.models()]
        claims = sum(len(b.get("loop_2300") or []) for m in models for a in m["loop_2000a"] for b in a["loop_2000b"])
        claims += sum(len(c.get("loop_2300") or []) for m in models for a in m["loop_2000a"] for b in a["loop_2000b"] for c in (b.get("loop_2000c") or []))
        result[path] = {"ok": True, "transactions": len(models), "claims": claims}
    except Exception as exc:
        result[path] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:3000]}
print(json.dumps(result))
"""


def pyx12_errors(text: str) -> list[str]:
    """Validate with pyx12 (the independent validator); every error it reports, or [] when its 999 accepts every transaction set."""
    pytest.importorskip("pyx12", reason="needs payerpolicy[x12]")
    import pyx12.params
    import pyx12.x12n_document

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("pyx12")
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    ack = io.StringIO()
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=ack, fd_html=None, fd_json=io.StringIO()
        )
    finally:
        logger.removeHandler(handler)
    if not ok and not messages:
        messages.append("pyx12 reported the document invalid")
    # The 999 acknowledgement pyx12 writes must accept every transaction set (IK5*A) and group (AK9*A).
    sets = len(re.findall(r"~\s*ST\*837\*", text))
    groups = len(re.findall(r"~\s*GS\*", text))
    if ok and (ack.getvalue().count("IK5*A~") != sets or ack.getvalue().count("AK9*A*") != groups):
        messages.append(f"pyx12 999 does not accept every claim: {ack.getvalue()}")
    return messages


def linuxforhealth_results(files: Mapping[str, str], tmp_path) -> dict[str, dict]:
    """Parse each interchange with linuxforhealth-x12: {name: {"ok", "claims"} or {"ok": False, "error"}}."""
    pytest.importorskip("linuxforhealth.x12", reason="needs payerpolicy[x12]")
    paths = {}
    for n, (name, text) in enumerate(files.items()):
        path = tmp_path / f"lfh-{n}.x12"
        path.write_text(re.sub(r"(DMG\*D8\*\d{8}\*)U~", r"\1F~", text))
        paths[str(path)] = name
    done = subprocess.run(
        [sys.executable, "-c", _LFH_SCRIPT, *paths], capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads(done.stdout)
    return {paths[path]: value for path, value in raw.items()}
