"""OGC API (Common, Features) at ``/ogc``: pygeoapi, configured from our settings, mounted in our app.

pygeoapi's own Starlette app reads a YAML file named by environment variables at import time; gridlink
instead builds pygeoapi's configuration as a dict from its settings and collection registry
(``spatial.features.layers``) when the app starts, so there is no second configuration to keep in step, and
routes the OGC paths to pygeoapi's API functions itself. Every collection is served by
``api.ogc.provider.GridlinkProvider`` (keyset pages, GeoJSON built in PostGIS, CQL2 pushed into SQL).

The OpenAPI document behind the landing page's ``service-desc`` link is pygeoapi's, generated from the same
configuration (OpenAPI 3.0, which OGC clients and test suites expect; FastAPI's own document at
``/openapi.json`` is 3.1 and describes the REST API). pygeoapi's OGC exception format is the documented
exception to problem+json under ``/ogc``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import urllib.parse
from pathlib import Path
from typing import Any

from pygeoapi import api as core_api
from pygeoapi.api import API, APIRequest
from pygeoapi.api import itemtypes as itemtypes_api
from pygeoapi.openapi import get_oas
from pygeoapi.util import render_j2_template
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.auth import request_token
from api.ogc import edits as ogc_edits
from api.ogc import provider as ogc_provider
from api.ogc.limits import Failures, HeavyLane, OgcSettings, caller_key, is_heavy
from api.ogc.openapi import self_contained
from api.ogc.tiles import CONFORMANCE as TILES_CONFORMANCE
from api.ogc.tiles import OgcTiles, collection_links
from api.problems import RETRY_AFTER_SECONDS, ogc_errors
from spatial import features
from spatial.access.accounts import PrincipalCache, resolve_token
from spatial.access.principal import Principal
from spatial.geo.bbox import parse_bbox
from spatial.store.routing import ReadRouter
from tiles.cache import TileCache
from web.pages import STATIC_DIR

# pygeoapi's HTML pages in gridlink's look: our templates come first (pygeoapi falls back to its own for the
# pages we do not override), and every asset they load is served under /ogc/static — ours from STATIC, the
# pinned Bootstrap, Leaflet and Swagger UI from web/static/vendor — so the pages need no CDN (issue 24).
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


class TileNumberConvertor(IntegerConvertor):
    """A tile's zoom, row or column in a path: at most nine digits (Starlette's ``int`` takes any number of
    digits, and Python's int() refuses more than 4,300 with an error that was a 500; beyond it, a 404)."""

    regex = "[0-9]{1,9}"


register_url_convertor("tile", TileNumberConvertor())
CRS_LIST = list(features.CRS_OUTPUT)
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
PART4_UPDATE = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update"
# Collections editable through Part 4 (api/ogc/edits.py): components, special grids and base grids (whose
# edits keep each community partitioned); districts, towns and communities are read-only, cases have their
# own workflow.
EDITABLE = ogc_edits.EDITABLE
NOT_OFFERED: set[str] = set() if EDITABLE else {PART4, PART4_UPDATE}
# The languages of /ogc, the first the default. Chinese is named without its territory: pygeoapi answers a
# language it does not offer (``fr``, ``*``, an unparsable tag) with ``Locale(language, territory)`` of the
# default, and Babel knows no ``zh_CN`` without its script (``zh_Hans_CN``), so ``zh-CN`` made every such
# request a 500 (issue 23, finding 11). ``zh`` matches ``zh-CN``, ``zh-TW`` and ``zh`` alike.
LANGUAGES = ["zh", "en-US"]


def conformance_classes() -> list[str]:
    """The conformance classes that hold for /ogc: OGC API Common and Features as pygeoapi serves them for
    feature collections, less ``NOT_OFFERED``."""
    offered = set(core_api.CONFORMANCE_CLASSES) | set(itemtypes_api.CONFORMANCE_CLASSES_FEATURES) | {PART4_UPDATE}
    return sorted((offered | set(TILES_CONFORMANCE)) - NOT_OFFERED)


def conformance_reply(api: API, request: APIRequest) -> tuple[dict, int, str]:
    """The conformance declaration, as pygeoapi would answer it but with ``conformance_classes``."""
    headers = request.get_response_headers(**api.api_headers)
    content = {"conformsTo": conformance_classes()}
    if request.format == "html":
        return headers, 200, render_j2_template(api.tpl_config, api.config["server"]["templates"],
                                                "conformance.html", content, request.locale)
    return headers, 200, json.dumps(content)


def pygeoapi_config(base_url: str, engine_key: str, bbox: tuple[float, float, float, float] | None,
                    limits: OgcSettings | None = None) -> dict:
    """pygeoapi's configuration for our collections, served at ``base_url`` (…/ogc)."""
    limits = limits or OgcSettings()
    extent = {"spatial": {"bbox": list(bbox or (119.9, 30.7, 121.4, 32.1)), "crs": features.DEFAULT_CRS}}
    resources = {}
    for name, lay in features.layers().items():
        provider = {
            "type": "feature", "name": "api.ogc.provider.GridlinkProvider", "data": name, "engine": engine_key,
            "items_url": f"{base_url}/collections/{name}/items", "id_field": "id", "crs": CRS_LIST,
            "storage_crs": features.DEFAULT_CRS, "include_extra_query_parameters": True,
            "statement_timeout_ms": limits.statement_timeout_ms, "count_cap": limits.count_cap,
            "count_ms": limits.count_ms,
        }
        if lay.time_column is not None:
            provider["time_field"] = lay.time_column.name
        if name in EDITABLE:
            provider["editable"] = True
        resources[name] = {
            "type": "collection", "title": lay.title, "description": lay.description,
            "keywords": ["gridlink", "Suzhou", name], "extents": extent, "providers": [provider],
            "links": collection_links(base_url, name),
        }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0}, "url": base_url, "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8", "languages": LANGUAGES, "pretty_print": False,
            "templates": {"path": str(TEMPLATES), "static": str(STATIC)},
            "limits": {"default_items": 100, "max_items": features.MAX_LIMIT},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "© OpenStreetMap contributors"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": {"zh": "gridlink 网格化城市治理", "en": "gridlink grid governance"},
                               "description": {"zh": "苏州网格、部件与案件",
                                               "en": "Suzhou grids, components and cases"},
                               "keywords": ["grid governance", "网格化"], "keywords_type": "theme",
                               "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                               "url": base_url},
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "gridlink", "url": base_url},
            "contact": {"name": "gridlink", "position": "maintainers", "address": "", "city": "Suzhou",
                        "stateorprovince": "Jiangsu", "postalcode": "", "country": "China", "phone": "",
                        "fax": "", "email": "", "url": base_url, "hours": "", "instructions": "",
                        "role": "pointOfContact"},
        },
        "resources": resources,
    }


def build(base_url: str, engine: Engine, bbox: tuple[float, float, float, float] | None,
          tile_cache: TileCache, principals: PrincipalCache, secret: bytes,
          limits: OgcSettings | None = None, reads: ReadRouter | None = None) -> Starlette:
    """The OGC sub-application for ``engine``, with links built on ``base_url`` and the cost limits of
    ``limits`` (api/ogc/limits.py; from the environment when None). ``reads``: where item and tile reads go
    (read replicas, spatial/store/routing.py); edits, and who is calling, stay on ``engine``."""
    limits = limits or OgcSettings()
    key = f"ogc-{id(engine)}"
    ogc_provider.register_engine(key, engine, reads)
    config = pygeoapi_config(base_url.rstrip("/"), key, bbox, limits)
    reader = Reader(engine, principals)
    lane = HeavyLane(limits)
    handlers = _Handlers(API(config, self_contained(get_oas(config))), engine, reader, lane)
    tiles = OgcTiles(base_url.rstrip("/"), engine, tile_cache, reader, limits.statement_timeout_ms, reads)
    routes = [
        Route("/", handlers.landing), Route("/openapi", handlers.openapi), Route("/conformance", handlers.conformance),
        Route("/collections", handlers.collections), Route("/collections/{collection}", handlers.collections),
        Route("/collections/{collection}/queryables", handlers.queryables),
        Route("/collections/{collection}/schema", handlers.schema),
        Route("/collections/{collection}/items", handlers.items, methods=["GET", "POST"]),
        Route("/collections/{collection}/items/{item}", handlers.item, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/collections/{collection}/tiles", tiles.tilesets),
        Route("/collections/{collection}/tiles/{tms}", tiles.tileset),
        Route("/collections/{collection}/tiles/{tms}/{z:tile}/{row:tile}/{col:tile}", tiles.tile),
        Route("/tileMatrixSets", tiles.matrix_sets), Route("/tileMatrixSets/{tms}", tiles.matrix_set),
        Mount("/static/vendor", StaticFiles(directory=STATIC_DIR / "vendor")),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    sub = Starlette(routes=routes, middleware=[Middleware(Failures)])
    # Requests inside the mount see this application as ``request.app``: give it what api/auth.py reads.
    sub.state.principals, sub.state.secret = principals, secret
    sub.state.lane = lane
    return sub


def close(sub: Starlette) -> None:
    """Release what ``build`` made for the sub-application ``sub`` (the heavy lane's threads)."""
    sub.state.lane.close()


class _Handlers:
    """The OGC routes: each hands its request to one pygeoapi API function, off the event loop."""

    def __init__(self, api: API, engine: Engine, reader: Reader, lane: HeavyLane) -> None:
        self.api = api
        self.engine = engine
        self.reader = reader
        self.lane = lane

    async def call(self, request: Request, function: Any, *args: Any, query: tuple | None = None,
                   bbox: tuple[float, float, float, float] | None = None,
                   principal: Principal | None = None, heavy_for: str | None = None) -> Response:
        """Run ``function(api, request, *args)`` in a thread — of the heavy lane for caller ``heavy_for``
        (api/ogc/limits.py), else the default pool — with the request's query (for our ``next`` links) and a
        bbox our provider applies itself (``_own_bbox``) in its context."""
        api = self.api
        if heavy_for is not None:
            await self.lane.screen(heavy_for)
        api_request = await APIRequest.from_starlette(request, api.locales)
        if not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            context = contextvars.copy_context()
            context.run(ogc_provider.REQUEST_QUERY.set, query or tuple(request.query_params.multi_items()))
            context.run(ogc_provider.REQUEST_BBOX.set, bbox)
            context.run(ogc_provider.REQUEST_PRINCIPAL.set, principal)
            context.run(ogc_provider.REQUEST_LSN.set, request.headers.get("gridlink-lsn"))
            if heavy_for is not None:
                reply = await self.lane.run(heavy_for, context.run, function, api, api_request, *args)
            else:
                reply = await asyncio.to_thread(context.run, function, api, api_request, *args)
            headers, status, content = reply
        response = Response(content, status_code=status)
        response.headers.update(headers)
        if status == 503:  # a provider's QueryBudgetError: pygeoapi's exception reply has no Retry-After
            response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        return response

    async def landing(self, request: Request) -> Response:
        return await self.call(request, core_api.landing_page)

    async def openapi(self, request: Request) -> Response:
        return await self.call(request, core_api.openapi_)

    async def conformance(self, request: Request) -> Response:
        return await self.call(request, conformance_reply)

    async def collections(self, request: Request) -> Response:
        return await self.call(request, core_api.describe_collections, request.path_params.get("collection"))

    async def queryables(self, request: Request) -> Response:
        return await self.call(request, itemtypes_api.get_collection_queryables, request.path_params["collection"])

    async def schema(self, request: Request) -> Response:
        return await self.call(request, core_api.get_collection_schema, request.path_params["collection"])

    @ogc_errors
    async def items(self, request: Request) -> Response:
        if request.method == "POST":
            return await ogc_edits.write(self.engine, request, "create")
        query = tuple(request.query_params.multi_items())
        principal = await self.reader.principal(request)
        heavy_for = caller_key(request, principal) if is_heavy(request) else None
        request, bbox = _own_bbox(request)
        response = await self.call(request, itemtypes_api.get_collection_items, request.path_params["collection"],
                                   query=query, bbox=bbox, principal=principal, heavy_for=heavy_for)
        return _geojson_when_asked(request, _keyset_links_only(response))

    @ogc_errors
    async def item(self, request: Request) -> Response:
        if request.method in ("PUT", "PATCH", "DELETE"):
            return await ogc_edits.write(self.engine, request, request.method.lower())
        principal = await self.reader.principal(request)
        response = await self.call(request, itemtypes_api.get_collection_item, request.path_params["collection"],
                                   request.path_params["item"], principal=principal)
        return ogc_edits.with_etag(request, _geojson_when_asked(request, response))


class Reader:
    """Who reads a collection: anonymous callers read the public ones (the grid collections); the others
    need an account (bearer token, HTTP Basic with a token as password — for QGIS — or a web session)."""

    def __init__(self, engine: Engine, principals: PrincipalCache) -> None:
        self.engine = engine
        self.principals = principals

    async def principal(self, request: Request) -> Principal | None:
        """The account of the request when the collection needs one (AuthenticationError without)."""
        found = features.layers().get(request.path_params.get("collection", ""))
        if found is None or found.public:
            return None
        token, principal = request_token(request), None
        if token is not None:  # a cached token is answered here; only a look-up takes the trip to a thread
            principal = self.principals.get(token) or await asyncio.to_thread(resolve_token, self.engine, token,
                                                                               self.principals)
        features.require_reader(found, principal)
        return principal


class Mounted:
    """The ``/ogc`` mount point: the OGC sub-application exists once the app has started (it needs the
    engine), so the mount forwards to whatever ``app.state.ogc`` holds."""

    async def __call__(self, scope, receive, send) -> None:
        sub = getattr(scope["app"].state, "ogc", None)
        if sub is None:
            response = Response("the OGC API is starting", status_code=503, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        await sub(scope, receive, send)


def _keyset_links_only(response: Response) -> Response:
    """Drop the offset-based ``next`` link pygeoapi adds by itself when the provider gave none (on the last
    page, or when numberMatched exceeds the limit): gridlink's next pages are keyset cursors."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return response
    body = json.loads(bytes(response.body))
    links = body.get("links", [])
    kept = [link for link in links if link.get("rel") != "next" or "cursor=" in link.get("href", "")]
    if len(kept) == len(links):
        return response
    body["links"] = kept
    fresh = Response(json.dumps(body, ensure_ascii=False), status_code=200)
    fresh.headers.update({k: v for k, v in response.headers.items() if k.lower() != "content-length"})
    return fresh


def _geojson_when_asked(request: Request, response: Response) -> Response:
    """Label a GeoJSON reply ``application/geo+json`` (RFC 7946) when the client's Accept names that type
    (GDAL, QGIS and OWSLib do): pygeoapi answers ``application/json`` whatever was asked. Replies to clients
    that did not ask keep pygeoapi's type."""
    asked = "application/geo+json" in request.headers.get("accept", "").lower()
    if asked and response.status_code == 200 and response.headers.get("content-type", "").startswith(
            "application/json") and request.query_params.get("f", "json") == "json":
        response.headers["content-type"] = "application/geo+json"
    return response


def _own_bbox(request: Request) -> tuple[Request, tuple[float, float, float, float] | None]:
    """Take a CRS84 ``bbox`` out of the request for our provider to apply: pygeoapi would "transform" it from
    CRS84 to CRS84 through pyproj, which cost 17 ms a request (bench/ogc.py). A bbox in another CRS
    (``bbox-crs``) still goes through pygeoapi."""
    params = request.query_params
    if "bbox" not in params or params.get("bbox-crs") not in (None, features.DEFAULT_CRS):
        return request, None
    bbox = parse_bbox(params["bbox"])
    rest = [(k, v) for k, v in params.multi_items() if k not in ("bbox", "bbox-crs")]
    return Request({**request.scope, "query_string": urllib.parse.urlencode(rest).encode()}, request.receive), bbox
