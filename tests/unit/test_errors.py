"""The one error table (spatial/errors.py) and its three renderers (api/problems.py), without a database."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from api.problems import TYPE_BASE, domain_problem, georeport_error, ogc_exception
from spatial import errors
from spatial.errors import GridlinkError


def _all(cls: type[GridlinkError]) -> list[type[GridlinkError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all(child))]


ERRORS = _all(GridlinkError)


def test_every_error_is_declared_once_in_the_module() -> None:
    declared = {obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, GridlinkError)}
    assert set(ERRORS) == declared and len(ERRORS) > 10
    slugs = [cls.slug for cls in ERRORS]
    assert len(slugs) == len(set(slugs))  # one problem type per error


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_carries_its_table_row(cls: type[GridlinkError]) -> None:
    assert isinstance(cls.status, int) and (400 <= cls.status < 500 or cls.status == 503)  # 503: retry later
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cls.slug)
    assert cls.title and cls.title[0].isupper()
    assert re.fullmatch(r"[A-Z][A-Za-z]+", cls.ogc_code)
    assert cls("x").georeport_code == cls.status


def test_the_docstring_table_is_the_classes() -> None:
    doc = errors.__doc__ or ""
    rows = {m[0]: (int(m[1]), m[2], m[3]) for m in re.findall(r"^\| (\w+Error) +\| (\d+) +\| ([\w-]+) +\| (\w+) +\|$",
                                                               doc, re.M)}
    assert rows == {cls.__name__: (cls.status, cls.slug, cls.ogc_code) for cls in ERRORS if cls is not GridlinkError}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_the_three_renderers_agree(cls: type[GridlinkError]) -> None:
    exc = cls("what went wrong", parameter="p")
    problem = domain_problem(exc, "/api/v1/somewhere")
    body = json.loads(bytes(problem.body))
    assert problem.status_code == body["status"] == cls.status
    assert problem.media_type == "application/problem+json"
    assert body["type"] == TYPE_BASE + cls.slug and body["title"] == cls.title
    assert body["detail"] == "what went wrong" and body["parameter"] == "p"

    # The one documented translation: OGC API - Features Part 4 answers invalid content with 400.
    ogc = ogc_exception(exc)
    status, code = (400, "InvalidParameterValue") if cls.status == 422 else (cls.status, cls.ogc_code)
    assert ogc.status_code == status
    assert json.loads(bytes(ogc.body)) == {"type": code, "code": code, "description": "what went wrong"}

    for fmt in ("json", "xml"):
        georeport = georeport_error(exc, fmt)
        assert georeport.status_code == cls.status
        if fmt == "json":
            assert json.loads(bytes(georeport.body)) == [{"code": cls.status, "description": "what went wrong"}]
        else:
            error = ET.fromstring(bytes(georeport.body)).find("error")
            assert error is not None and error.findtext("code") == str(cls.status)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_challenges_and_retry_after_in_every_format(cls: type[GridlinkError]) -> None:
    exc = cls("no", retry_after=7) if cls.status == 429 else cls("no")
    for response in (domain_problem(exc, "/x"), ogc_exception(exc), georeport_error(exc, "json")):
        assert (response.headers.get("www-authenticate") == 'Bearer realm="gridlink"') is (cls.status == 401)
        assert (response.headers.get("retry-after") == "7") is (cls.status == 429)
