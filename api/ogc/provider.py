"""gridlink's pygeoapi feature provider: pygeoapi's OGC parameters in, spatial/features/ queries out.

pygeoapi loads a provider by dotted path (``api.ogc.provider.GridlinkProvider``) and builds one per request
from the collection's provider definition, a plain dict of the generated configuration (api/ogc/build.py). The
definition cannot carry the application's engine, so the application registers it under a key here
(``register_engine``) and the definition names that key — the one piece of module state, set once at
startup and dropped at shutdown.

Keyset paging: pygeoapi passes only ``offset``; with ``include_extra_query_parameters`` it hands extra
query parameters to the provider as property filters, so the ``cursor`` parameter of our ``next`` links
arrives here and is taken out of the filters. Small offsets (pygeoapi's HTML pages use them) are served
with SQL OFFSET up to ``features.MAX_OFFSET``; beyond that the reply points to the ``next`` links: deep
OFFSET scans are what the cursor exists to avoid.
"""

from __future__ import annotations

import contextvars
import urllib.parse
from datetime import datetime
from typing import Any

from pygeoapi.provider.base import BaseProvider, ProviderGenericError, ProviderInvalidQueryError
from sqlalchemy import Engine

from api.ogc.limits import budgeted
from api.problems import ogc_status
from spatial import features
from spatial.access.principal import Principal
from spatial.errors import GridlinkError, InvalidParameterError
from spatial.store.routing import ReadRouter

_ENGINES: dict[str, Engine] = {}
_READS: dict[str, ReadRouter] = {}  # where reads may go instead (read replicas, spatial/store/routing.py)
# The query parameters of the request being served (set by api/ogc/build.py around each pygeoapi call).
REQUEST_QUERY: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("ogc_query", default=())
# A CRS84 bbox that api/ogc/build.py took out of the request before pygeoapi saw it (see its ``items``).
REQUEST_BBOX: contextvars.ContextVar[tuple[float, float, float, float] | None] = contextvars.ContextVar(
    "ogc_bbox", default=None)
# The account reading (None: anonymous); api/ogc/build.py has already refused anonymous reads of non-public layers.
REQUEST_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ogc_principal", default=None)
# The caller's Gridlink-LSN header (read your writes on read replicas), None when not sent.
REQUEST_LSN: contextvars.ContextVar[str | None] = contextvars.ContextVar("ogc_lsn", default=None)


class DomainProviderError(ProviderGenericError):
    """A domain error as pygeoapi's provider error, answered with the status and OGC code of
    ``api.problems.ogc_status`` — the same as every other ``/ogc`` refusal."""

    def __init__(self, exc: GridlinkError) -> None:
        super().__init__(user_msg=exc.detail)
        self.http_status_code, self.ogc_exception_code = ogc_status(exc)


def register_engine(key: str, engine: Engine | None, reads: ReadRouter | None = None) -> None:
    """Make ``engine`` the one providers named ``key`` use, and ``reads`` the router of their reads (None
    forgets them)."""
    if engine is None:
        _ENGINES.pop(key, None)
        _READS.pop(key, None)
    else:
        _ENGINES[key] = engine
        if reads is not None:
            _READS[key] = reads


class GridlinkProvider(BaseProvider):
    """Features of one gridlink collection (spatial.features.Layer), read through the shared engine."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.layer = features.layer(provider_def["data"])
        self.engine = _ENGINES[provider_def["engine"]]
        self.reads = _READS.get(provider_def["engine"])
        self.items_url = provider_def["items_url"]
        self.budget_ms = int(provider_def["statement_timeout_ms"])  # api/ogc/limits.py
        self.count_cap, self.count_ms = int(provider_def["count_cap"]), int(provider_def["count_ms"])
        self.get_fields()

    def _read_engine(self) -> Engine:
        """A read replica that has replayed the caller's last write, else the primary."""
        return self.reads.engine(REQUEST_LSN.get()) if self.reads is not None else self.engine

    def get_fields(self) -> dict[str, dict[str, str]]:
        """The collection's properties and their JSON types."""
        if not self._fields:
            self._fields: dict[str, dict[str, str]] = self.layer.field_types()
        return self._fields

    def query(self, offset: int = 0, limit: int = 10, resulttype: str = "results", bbox: list | None = None,
              datetime_: str | None = None, properties: list | None = None, sortby: list | None = None,
              select_properties: list | None = None, skip_geometry: bool = False, q: str | None = None,
              filterq: Any = None, crs_transform_spec: Any = None, **kwargs: Any) -> dict[str, Any]:
        """One page of features (see the module docstring for paging)."""
        if offset > features.MAX_OFFSET:
            raise ProviderInvalidQueryError(user_msg=f"offset is limited to {features.MAX_OFFSET:,}: follow the "
                                                     "'next' links (keyset cursors), which stay fast on any page")
        if q:
            raise ProviderInvalidQueryError(user_msg="free-text search (q) is not offered; use filter (CQL2)")
        equals = [(k, str(v)) for k, v in properties or [] if k != "cursor"]
        cursor = next((str(v) for k, v in properties or [] if k == "cursor"), None)
        unknown = [k for k, _ in equals if k not in self.layer.properties]
        if unknown:
            raise ProviderInvalidQueryError(user_msg=f"unknown query parameter(s): {', '.join(unknown)}")
        query = features.Query(
            limit=limit, cursor=cursor, offset=offset, equals=equals,
            bbox=(bbox[0], bbox[1], bbox[2], bbox[3]) if bbox else REQUEST_BBOX.get(),
            interval=_interval(datetime_), sortby=[(s["property"], s["order"] != "-") for s in sortby or []],
            crs=crs_transform_spec.target_crs_uri if crs_transform_spec else features.DEFAULT_CRS,
            skip_geometry=bool(skip_geometry), select=list(select_properties) if select_properties else None,
            scope=features.scope_condition(self.layer, REQUEST_PRINCIPAL.get()),
            count_cap=self.count_cap, count_ms=self.count_ms,
        )
        try:
            if filterq is not None:
                query.condition = features.cql2_condition(self.layer, filterq)
            with budgeted(self._read_engine(), self.budget_ms) as conn:
                page = features.page(conn, self.layer, query)
        except GridlinkError as exc:
            raise DomainProviderError(exc) from exc
        cursor_next = page.pop("next")
        page["links"] = [self._next_link(kwargs, properties, cursor_next)] if cursor_next else []
        if resulttype == "hits":
            page["features"], page["numberReturned"] = [], 0
        return page

    def _next_link(self, kwargs: dict, properties: list | None, cursor: str) -> dict[str, str]:
        # The request's own parameters (api/ogc/build.py hands them over), with the cursor of the next page.
        params = [(k, v) for k, v in REQUEST_QUERY.get() if k not in ("cursor", "offset")]
        params.append(("cursor", cursor))
        return {"rel": "next", "type": "application/geo+json", "title": "Items (next)",
                "href": f"{self.items_url}?{urllib.parse.urlencode(params)}"}

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """One feature by its id."""
        spec = kwargs.get("crs_transform_spec")
        try:
            with budgeted(self._read_engine(), self.budget_ms) as conn:
                return features.one(conn, self.layer, str(identifier),
                                    crs=spec.target_crs_uri if spec else features.DEFAULT_CRS,
                                    scope=features.scope_condition(self.layer, REQUEST_PRINCIPAL.get()))
        except GridlinkError as exc:
            raise DomainProviderError(exc) from exc


def _interval(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """pygeoapi's validated ``datetime`` (an instant or ``start/end`` with ``..`` for open ends)."""
    if not value:
        return None
    start, _, end = value.partition("/")

    def edge(text: str) -> datetime | None:
        try:
            return None if text in ("", "..") else datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:  # pygeoapi passes what it cannot parse on as it came
            raise DomainProviderError(InvalidParameterError(
                f"datetime must be an ISO 8601 instant or interval (start/end, '..' open), not {value!r}",
                parameter="datetime")) from None
    if not _:
        moment = edge(start)
        return moment, moment
    return edge(start), edge(end)
