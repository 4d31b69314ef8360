"""Failures found by schemathesis and the hostile-input corpus, kept as regression examples: each request of
``schemathesis_examples.json`` is replayed against the app on the test world and must not get a 5xx.

When tests/integration/test_schemathesis.py fails, its message names the seed and schemathesis' "Reproduce
with" line; add that request here (method, url, and ``json``, ``form`` or a raw ``content`` with its
``headers``) with a note of where it was found, so that it is tried on every run whatever the seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import admin_headers

EXAMPLES = json.loads((Path(__file__).parent / "schemathesis_examples.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def app_client(world_engine):
    from api.app import create_app

    app = create_app(url=world_engine.url.render_as_string(hide_password=False))
    with TestClient(app, headers=admin_headers(), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["found"][:60] for e in EXAMPLES])
def test_kept_examples_are_answered_without_a_server_error(app_client: TestClient, example: dict) -> None:
    content = example["content"].encode("utf-8") if "content" in example else None
    reply = app_client.request(example["method"], example["url"], json=example.get("json"),
                               data=example.get("form"), content=content, headers=example.get("headers"))
    assert reply.status_code < 500, (example["found"], reply.status_code, reply.text[:300])
