"""JSON merge patch (RFC 7396) as PATCH on /ogc applies it: every example of the RFC, known answers."""

from __future__ import annotations

import copy

import pytest

from api.ogc.edits import merge_patch


@pytest.mark.parametrize(("original", "patch", "result"), [
    # RFC 7396 Appendix A, in order.
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    # RFC 7396 section 3, the worked example.
    ({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"],
      "content": "This will be unchanged"},
     {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]},
     {"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged",
      "phoneNumber": "+01-123-456-7890"}),
])
def test_rfc_7396_examples(original, patch, result) -> None:
    before = copy.deepcopy(original)
    assert merge_patch(original, patch) == result
    assert original == before  # the stored feature is not changed in place
