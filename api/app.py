"""The composition root: builds the FastAPI application from settings."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from api import logs, openapi_document, openapi_pages, problems
from api.fast_intake import FastIntake
from api.middleware import (
    BodySizeLimit,
    DatabaseUnavailable,
    PublicRedirects,
    SecurityHeaders,
    UnreadableText,
    WrittenLsn,
)
from api.ogc import build as ogc
from api.open311 import routes as open311
from api.rate_limit import LoginGate, LoginThrottle, RateLimiter
from api.routes import (
    areas,
    auth,
    bulk,
    cases,
    categories,
    components,
    events,
    grid_imports,
    here,
    inbox,
    kpi,
    photos,
    plans,
    tiles,
    workflow,
)
from api.settings import ApiSettings
from spatial.access.accounts import PrincipalCache, server_secret, watch_principals
from spatial.access.limits import SharedLoginThrottle, SharedRateLimiter
from spatial.cases import jobs
from spatial.cases.feed import Feed
from spatial.features import coverage_extent
from spatial.reference.cache import ReferenceCache
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url, make_engine, make_intake_pool, make_read_router
from tiles.cache import TileCache
from web.pages import (
    ASSET_CSP,
    PAGE_CSP,
    STATIC_DIR,
    render_console,
    render_dashboard,
    render_planning,
    render_registry,
    render_report,
    report_worker,
)


@lru_cache(maxsize=512)
def gzipped_asset(path: str, mtime_ns: int, size: int, level: int) -> bytes:
    """A static file gzip-compressed, once per process and version of the file (its path, time and size)."""
    with open(path, "rb") as file:
        return gzip.compress(file.read(), compresslevel=level, mtime=0)


class PageAssets(StaticFiles):
    """``/static``: the pages' assets, answered with ``ASSET_CSP`` instead of the API's policy: a worker script
    (MapLibre's) is governed by the CSP of its own reply, and under ``default-src 'none'`` alone it could
    fetch no tile. Compressed once and kept (``gzipped_asset``) rather than by GZipMiddleware on every
    request: MapLibre's 1.1 MB script took ~40 ms of the event loop on each cold load of a map page, while
    the page's own requests waited (bench/console.py)."""

    def __init__(self, *args: Any, gzip_level: int = 0, gzip_min_bytes: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gzip_level, self.gzip_min_bytes = gzip_level, gzip_min_bytes

    def file_response(self, full_path: Any, stat_result: os.stat_result, scope: Any,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Content-Security-Policy"] = ASSET_CSP
        asked = Headers(scope=scope)
        if (self.gzip_level and isinstance(response, FileResponse) and scope.get("method") == "GET"
                and status_code == 200 and "range" not in asked and "gzip" in asked.get("accept-encoding", "")
                and stat_result.st_size >= self.gzip_min_bytes
                and (response.media_type or "").startswith(COMPRESSIBLE_ASSETS)):
            body = gzipped_asset(str(full_path), stat_result.st_mtime_ns, stat_result.st_size, self.gzip_level)
            headers = {k: v for k, v in response.headers.items() if k != "content-length"}
            packed = Response(body, status_code, headers={**headers, "Content-Encoding": "gzip"})
            packed.headers.append("Vary", "Accept-Encoding")
            return packed
        return response


COMPRESSIBLE_ASSETS = ("text/", "application/javascript", "application/json", "image/svg+xml")


def create_app(db_settings: DatabaseSettings | None = None, api_settings: ApiSettings | None = None,
               url: str | None = None) -> FastAPI:
    """Return the gridlink application; the engine is created at startup and disposed at shutdown."""
    db_settings = db_settings or DatabaseSettings()
    api_settings = api_settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        target = url or database_url(db_settings)
        app.state.engine = make_engine(target, db_settings)
        # Plain single-report intake (api/fast_intake.py) runs on its own asyncpg pool.
        app.state.intake_pool = await make_intake_pool(target, db_settings)
        # Heavy reads on read replicas when GRIDLINK_READ_DATABASE_URLS names some (spatial/store/routing.py).
        app.state.reads = make_read_router(app.state.engine, db_settings)
        with app.state.engine.begin() as conn:
            app.state.reference = ReferenceCache.load(conn)
            bbox = coverage_extent(conn)
            app.state.secret = server_secret(conn)
        app.state.principals = PrincipalCache()
        # Tokens ended elsewhere (the CLI, another worker) leave this process's cache at once.
        direct = db_settings.direct_url(target)  # LISTEN never through PgBouncer (docs/scale-out.md)
        watcher = asyncio.create_task(watch_principals(direct, app.state.principals))
        app.state.tiles = TileCache()
        app.state.ogc = ogc.build(api_settings.base_url() + "/ogc", app.state.engine, bbox, app.state.tiles,
                                  app.state.principals, app.state.secret, reads=app.state.reads)
        app.state.feed = Feed(app.state.engine, app.state.reference, interval=api_settings.feed_interval_s,
                              per_caller=api_settings.feed_per_caller, max_subscribers=api_settings.feed_max)
        # Reminders and supervision orders (issue 17 item 3): safe in every process at once (spatial/cases/jobs.py).
        scheduler = asyncio.create_task(jobs.run(direct, app.state.engine, every_s=api_settings.scheduler_every_s,
                                                 install_signal_handlers=False)) if api_settings.scheduler else None
        try:
            yield
        finally:
            await app.state.feed.close()
            if scheduler is not None:
                scheduler.cancel()
                with suppress(asyncio.CancelledError):
                    await scheduler
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            ogc.close(app.state.ogc)
            app.state.reads.dispose()
            app.state.engine.dispose()
            await app.state.intake_pool.close()

    app = FastAPI(title="gridlink", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Spatial server for grid-based city governance (网格化社会治理).")
    app.state.api_settings = api_settings
    logs.install()  # no api_key or token from a query string in the access log
    if api_settings.limits == "database":  # one count for every process and machine (docs/scale-out.md §4)
        app.state.login_throttle = SharedLoginThrottle(lambda: app.state.engine, api_settings.login_free_failures,
                                                       api_settings.login_free_failures_per_client,
                                                       base_s=api_settings.login_backoff_base_s,
                                                       max_s=api_settings.login_backoff_max_s)
        app.state.public_limiter = SharedRateLimiter(lambda: app.state.engine, api_settings.public_per_minute,
                                                     api_settings.public_burst)
    else:
        app.state.login_throttle = LoginThrottle(api_settings.login_free_failures,
                                                 api_settings.login_free_failures_per_client,
                                                 base_s=api_settings.login_backoff_base_s,
                                                 max_s=api_settings.login_backoff_max_s)
        app.state.public_limiter = RateLimiter(api_settings.public_per_minute, api_settings.public_burst)
    app.state.login_gate = LoginGate(api_settings.login_hash_concurrency, api_settings.login_hash_queue)
    problems.install(app)
    openapi_pages.install(app)  # /docs and /redoc from the pinned copies in web/static/vendor (no CDN)
    openapi_document.install(app)  # security schemes, bodies and examples on every operation
    app.include_router(areas.router)
    app.include_router(plans.router)
    app.include_router(grid_imports.router)
    app.include_router(auth.router)
    app.include_router(bulk.router)
    app.include_router(photos.router)  # before cases: /cases/with-photos is not a case id
    app.include_router(here.router)
    app.include_router(categories.router)
    app.include_router(cases.router)
    app.include_router(inbox.router)
    app.include_router(events.router)
    app.include_router(kpi.router)
    app.include_router(components.router)
    app.include_router(open311.router)
    app.include_router(tiles.router)
    app.include_router(workflow.router)
    app.add_middleware(FastIntake)  # inside BodySizeLimit: the limit applies to it too
    if db_settings.read_url_list():
        app.add_middleware(WrittenLsn)  # outside the lean intake: its writes carry the LSN too
    app.add_middleware(BodySizeLimit, limit=api_settings.max_body_bytes,
                       larger={"/api/v1/cases/bulk": None,  # these routes stream against their own limits
                               "/api/v1/grids/imports": None, "/api/v1/components/imports": None,
                               **dict.fromkeys(photos.UNBOUNDED)}, streamed=photos.PATTERN)
    app.add_middleware(UnreadableText)  # NUL and other characters outside XML 1.0 in a path or query: 400
    app.add_middleware(DatabaseUnavailable)  # 503 for every path while the database is away
    if api_settings.gzip_level > 0:
        # gzip where the client accepts it. Starlette leaves text/event-stream alone (the live feed must reach
        # its client event by event, not when a compressor's buffer fills), and images and archives.
        app.add_middleware(GZipMiddleware, minimum_size=api_settings.gzip_min_bytes,
                           compresslevel=api_settings.gzip_level,
                           exclude_content_types=tuple({*DEFAULT_EXCLUDED_CONTENT_TYPES, "text/event-stream"}))
    app.add_middleware(PublicRedirects, public_url=api_settings.base_url())  # never to the Host a client sent
    app.add_middleware(SecurityHeaders, https=api_settings.base_url().startswith("https://"))  # on every reply
    app.mount("/static", PageAssets(directory=STATIC_DIR, gzip_level=api_settings.gzip_level,
                                    gzip_min_bytes=api_settings.gzip_min_bytes), name="static")
    app.mount("/ogc", ogc.Mounted(), name="ogc")

    _pages(app)
    return app


PAGES = {"/console": render_console, "/report": render_report, "/registry": render_registry,
         "/planning": render_planning, "/dashboard": render_dashboard}
"""The HTML pages (web/pages.py) by path: the dispatcher console (also the landing page ``/``, issue 20), the
inspector's phone page, the asset owners' registry, the planner's grid editor and the evaluation dashboard
(issue 21)."""


def _pages(app: FastAPI) -> None:
    """Serve the HTML pages (``PAGES``, with the pages' Content-Security-Policy) and the report page's worker."""
    def page_route(render: Callable[[], str]) -> Callable[[], HTMLResponse]:
        def page() -> HTMLResponse:
            return HTMLResponse(render(), headers={"Content-Security-Policy": PAGE_CSP})
        return page

    app.add_api_route("/", page_route(render_console), response_class=HTMLResponse, include_in_schema=False)
    for path, render in PAGES.items():
        app.add_api_route(path, page_route(render), response_class=HTMLResponse, include_in_schema=False)

    @app.get("/report-sw.js", include_in_schema=False)
    def report_sw() -> Response:  # a worker obeys its own reply's policy: ASSET_CSP lets it fetch 'self'
        return Response(report_worker(), media_type="text/javascript",
                        headers={"Content-Security-Policy": ASSET_CSP, "Cache-Control": "no-cache"})

