"""Photos with a case (issue 20): ``/api/v1/cases/{id}/photos``, a report with its photos in one request
(``POST /api/v1/cases/with-photos``), and a photo's GPS position before anything is stored
(``POST /api/v1/photos/inspect``).

Uploads are ``multipart/form-data`` with the files in ``photo`` fields (at most ``MAX_PER_REQUEST``, each at
most ``MAX_PHOTO_BYTES``). Admission, cheapest first: who calls (401) and whether the account may add photos
to that case at all (404, 403, 409 full or closed) before a byte of the body is read; then the media type of
the request (415), the body streamed against its limit (413), then each file by its content
(spatial/cases/photos.py: 415 not a photo, 422 unreadable). Every photo of a request is stored, or none.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import AuthenticatedRoute, PrincipalDep, client_address
from api.deps import ConnectionDep, EngineDep, IdempotencyKey, ReferenceDep, read_capped
from api.routes.reporting import ReportingRoute
from spatial.cases.intake import create_case
from spatial.cases.photos import MAX_PER_REQUEST, CleanPhoto, add_photos, admit_upload, clean, list_photos, photo_bytes
from spatial.cases.schemas import CaseCreate, case_json
from spatial.errors import InvalidParameterError, PayloadTooLargeError, UnsupportedMediaTypeError

MAX_PHOTO_BYTES = 8 * 1_048_576
DECODERS = 2  # photos decoded at once per process
MAX_FORM_BYTES = 64 * 1024  # the report and the multipart framing around the files
PATTERN = r"^/api/v1/cases/[^/]+/photos$"  # api/app.py lets these bodies past the general limit: streamed here
REPORT = TypeAdapter(CaseCreate)
UNBOUNDED = ("/api/v1/cases/with-photos", "/api/v1/photos/inspect")

PHOTOS_PART = {"type": "array", "minItems": 1, "maxItems": MAX_PER_REQUEST,
               "items": {"type": "string", "format": "binary"},
               "description": f"1–{MAX_PER_REQUEST} photo files (JPEG, PNG or WebP, each at most {MAX_PHOTO_BYTES:,} "
                              "bytes); stored re-encoded, without their metadata"}
REPORT_PART = {"type": "string", "contentMediaType": "application/json",
               "description": "the JSON body of POST /api/v1/cases"}


def _form(description: str, **parts: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a multipart form these routes read themselves (``_form_files``)."""
    return {"requestBody": {"required": True, "description": description, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": list(parts), "properties": parts},
        "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp"}}}}}}


router = APIRouter(prefix="/api/v1", tags=["photos"], route_class=AuthenticatedRoute)
reports = APIRouter(route_class=ReportingRoute)


async def _form_files(request: Request, *, most: int, report: bool = False) -> tuple[list[bytes], str | None]:
    """The files of the ``photo`` fields (and the ``report`` field's text), streamed against their limit."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise UnsupportedMediaTypeError(f"send the photos as multipart/form-data, not {media or 'none'!r}",
                                        media_type=media)
    limit = most * MAX_PHOTO_BYTES + MAX_FORM_BYTES
    body = await read_capped(request, limit, f"{most} photo(s) of {MAX_PHOTO_BYTES:,} bytes", "photos")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, receive).form(max_files=most, max_fields=2, max_part_size=MAX_FORM_BYTES)
    files, text = [], None
    for name, value in form.multi_items():
        if name == "photo" and isinstance(value, UploadFile):
            data = await value.read()
            if len(data) > MAX_PHOTO_BYTES:
                raise PayloadTooLargeError(f"a photo may not exceed {MAX_PHOTO_BYTES:,} bytes")
            files.append(data)
        elif name == "report" and report and isinstance(value, str):
            text = value
        else:
            raise InvalidParameterError(f"unexpected form field {name!r} (send photo files, and a report)",
                                        parameter=name)
    return files, text


async def _cleaned(request: Request, files: list[bytes]) -> list[CleanPhoto]:
    """Each file checked and re-encoded in a thread, at most ``DECODERS`` at once per process (a decoded
    48-megapixel photo holds about 150 MB)."""
    gate = getattr(request.app.state, "photo_decoders", None)
    if gate is None:
        gate = request.app.state.photo_decoders = asyncio.Semaphore(DECODERS)
    cleaned = []
    for data in files:
        async with gate:
            cleaned.append(await run_in_threadpool(clean, data))
    return cleaned


@router.post("/cases/{case_id}/photos", status_code=201, summary="Add photos to a case (multipart, field photo)",
             openapi_extra=_form("The photos, each in a photo field.", photo=PHOTOS_PART))
async def upload(case_id: int, request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    """Store 1–4 photos with a case; 201 when one was new, 200 when every one was stored before (a retry)."""

    def admit() -> None:
        with engine.connect() as conn:
            admit_upload(conn, case_id, principal)

    await run_in_threadpool(admit)
    files, _ = await _form_files(request, most=MAX_PER_REQUEST)
    if not files:
        raise InvalidParameterError("send at least one file in a photo field", parameter="photo")
    photos = await _cleaned(request, files)

    def store() -> tuple[list, int]:
        with engine.begin() as conn:
            return add_photos(conn, case_id, photos, by=principal, client=client_address(request))

    stored, new = await run_in_threadpool(store)
    return Response(json.dumps({"photos": stored}, ensure_ascii=False), status_code=201 if new else 200,
                    media_type="application/json")


@router.get("/cases/{case_id}/photos", summary="The photos of a case")
def index(case_id: int, conn: ConnectionDep, principal: PrincipalDep) -> Response:
    """List a case's photos (id, ref, url, size, GPS of the original …), oldest first."""
    photos = list_photos(conn, case_id, by=principal)
    return Response(json.dumps({"photos": photos}, ensure_ascii=False), media_type="application/json")


@router.get("/cases/{case_id}/photos/{photo_id}", summary="One photo's image (without metadata)",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
def image(case_id: int, photo_id: int, conn: ConnectionDep, principal: PrincipalDep, request: Request,
          size: Literal["full", "thumb"] = "full") -> Response:
    """The stored image, or with ``size=thumb`` its thumbnail (at most 480 px); ``ETag`` is the original's
    digest (``If-None-Match`` → 304)."""
    media_type, data, digest = photo_bytes(conn, case_id, photo_id, by=principal, thumb=size == "thumb")
    tag = f'"{digest}{"-thumb" if size == "thumb" else ""}"'
    headers = {"ETag": tag, "Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


@reports.post("/cases/with-photos", status_code=201,
              summary="Report an incident with its photos in one request (multipart: report JSON + photo files)",
              openapi_extra=_form("The report (a JSON text field) and its photos, each in a photo field.",
                                  report=REPORT_PART, photo=PHOTOS_PART))
async def report_with_photos(request: Request, engine: EngineDep, ref: ReferenceDep, principal: PrincipalDep,
                             idempotency_key: IdempotencyKey = None) -> Response:
    """``POST /api/v1/cases`` with photos: the case and every photo are stored together or not at all; with an
    ``Idempotency-Key`` a retry answers the first attempt's case and photos (200)."""
    files, text = await _form_files(request, most=MAX_PER_REQUEST, report=True)
    if text is None:
        raise InvalidParameterError("the form needs a report field: the JSON of POST /api/v1/cases",
                                    parameter="report")
    try:
        body = REPORT.validate_json(text)
    except ValidationError as exc:
        raise InvalidParameterError(f"report: {exc.errors(include_url=False)[0]['msg']}", parameter="report") from exc
    photos = await _cleaned(request, files)
    client = client_address(request)

    def store() -> tuple[dict, bool]:
        with engine.begin() as conn:
            case, created = create_case(conn, ref, body, actor=None, idempotency_key=idempotency_key,
                                        by=principal, client=client)
            stored = add_photos(conn, case["id"], photos, by=principal, client=client)[0] if created else \
                list_photos(conn, case["id"], by=principal)
            return {**json.loads(case_json(case)), "photos": stored}, created

    reply, created = await run_in_threadpool(store)
    headers = {"Location": f"/api/v1/cases/{reply['id']}"} | ({} if created else {"Idempotent-Replayed": "true"})
    return Response(json.dumps(reply, ensure_ascii=False), status_code=201 if created else 200,
                    headers=headers, media_type="application/json")


@reports.post("/photos/inspect", summary="What a photo says before it is sent with a report (nothing is stored)",
              openapi_extra=_form("One photo in a photo field.", photo={**PHOTOS_PART, "maxItems": 1,
                                                                         "description": "one photo file"}))
async def inspect(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The media type, size and GPS position (``{"lon", "lat"}`` or null) of one photo, checked as an upload
    is; nothing is stored (the report page offers "use the photo's location")."""
    files, _ = await _form_files(request, most=1)
    if not files:
        raise InvalidParameterError("send one file in a photo field", parameter="photo")
    photo = (await _cleaned(request, files))[0]
    return {"media_type": photo.media_type, "width": photo.width, "height": photo.height, "sha256": photo.sha256,
            "gps": photo.gps_json()}


router.include_router(reports)
