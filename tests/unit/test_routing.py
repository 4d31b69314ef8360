"""The read router's pure parts (spatial/store/routing.py): LSNs, and what it does without a usable replica."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from spatial.store.cluster import free_port
from spatial.store.routing import ReadRouter, format_lsn, parse_lsn


@pytest.mark.parametrize(("text", "value"), [
    ("0/0", 0), ("0/1A2B3C4", 0x1A2B3C4), ("16/B374D848", (0x16 << 32) + 0xB374D848), (" 1/0 ", 1 << 32),
])
def test_an_lsn_is_a_number(text: str, value: int) -> None:
    assert parse_lsn(text) == value
    assert parse_lsn(format_lsn(value)) == value


@pytest.mark.parametrize("text", [None, "", "latest", "0/", "/1", "1/2/3", "G/0", "123456789/0", "0/1; DROP"])
def test_anything_else_is_no_lsn(text: str | None) -> None:
    assert parse_lsn(text) is None


def test_without_replicas_or_with_a_dead_one_reads_go_to_the_primary() -> None:
    primary = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")  # never connected to here
    assert ReadRouter(primary, [], max_lag_bytes=0, max_lag_s=0).engine("0/0") is primary
    dead = create_engine(f"postgresql+psycopg2://nobody:x@127.0.0.1:{free_port()}/none")  # nobody listens
    router = ReadRouter(primary, [dead], max_lag_bytes=1 << 30, max_lag_s=3600)
    assert router.engine() is primary
    assert router.engine("0/0") is primary
    assert router.engine("not an lsn") is primary
    assert router.replicas[0].usable is False
