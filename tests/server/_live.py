"""Helpers for the HTTP service tests: a real `payerpolicy serve` on loopback, and uvicorn in a thread."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Test modules skip themselves when payerpolicy[server] or payerpolicy[server-test] is missing
# (`nox -s tests` installs both); nothing here imports them at import time.

ROOT = Path(__file__).resolve().parents[2]
DC_VISIT = ROOT / "examples" / "dc_visit.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A `payerpolicy serve` subprocess; everything it logs goes to ``log``."""

    def __init__(self, log: Path, *args: str) -> None:
        import httpx

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "payerpolicy", "serve", "--port", str(self.port), *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for _ in range(300):  # at most 30 s
            if self.proc.poll() is not None:
                raise RuntimeError(f"payerpolicy serve exited with {self.proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"payerpolicy serve did not answer /healthz:\n{log.read_text()}")

    def stop(self) -> str:
        """Stop the server (as Ctrl-C would) and return everything it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.log.read_text()


@contextlib.contextmanager
def threaded(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(300):
        if server.started:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
