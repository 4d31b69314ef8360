"""Benchmarks: each prints ratios against a reference measured in the same run."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """This machine, for the record: host name, cores and Python."""
    return f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}"


def save(name: str, result: dict[str, Any]) -> None:
    """Write ``result`` to bench/results/``name`` (JSON; BENCHMARKS.md quotes it by hand)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False))
