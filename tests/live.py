"""A live ``gridlink serve`` for tests whose clients are outside Python (GDAL, QGIS, schemathesis) or that
must hit a real server process (fault tests)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spatial.store.cluster import free_port


@contextmanager
def serving(url: str, log: Path | None = None, level: str = "error") -> Iterator[int]:
    """Serve the database at ``url`` on a free loopback port until the block ends; yield the port. ``log``:
    a file for the server's output at ``level`` (for a failing test to show; ``info`` adds the access log)."""
    port = free_port()
    errors = open(log or os.devnull, "a")  # noqa: SIM115 - closed when the server is gone
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level",
                               level], env=dict(os.environ, GRIDLINK_DATABASE_URL=url),
                              stdout=errors, stderr=errors)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/api/v1/health")
                probe.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gridlink serve did not start") from None
                time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        errors.close()
