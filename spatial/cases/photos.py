"""Photos stored with a case (issue 20): the inspector's photo of a report, a handler's photo of the work done.

A photo is judged by its content, never by its file name or the type the client declared: Pillow must read it
as a JPEG, PNG or WebP image (anything else is a 415), decode it whole (a truncated or corrupt file, or one of
more than ``MAX_PIXELS`` pixels, is a 422) — and then the server keeps its own copy, re-encoded in the same
format without EXIF, XMP or any other metadata (the camera's serial number, the time and the place the phone
recorded), turned upright by its EXIF orientation first and made at most ``MAX_EDGE`` pixels on its long side.
The GPS position the original carried is read before it is dropped and offered back to the client ("use the
photo's location" on the report page) and kept as two numbers beside the photo.

Storage: ``case_photo`` (migration 0022), the cleaned bytes in the database beside the case — stored in the
transaction of the report or upload that brings them (all of a request's photos or none), read with the
case's read rule, and saved by ``gridlink backup`` with everything else. A photo sent again to the same case
(a retried upload from a phone's offline queue) is stored once: ``(case_id, sha256 of the original)`` is
unique, and the reply names the photo already stored. Who may add photos: ``scope.check_add_photo``. A case
holds at most ``MAX_PER_CASE`` photos, and a closed or voided case takes none (409). One audit row
``case.photo`` per request that stored something.

Events refer to photos as ``photo:<id>`` (the ``ref`` of a stored photo) in ``data.photos`` of ``handle`` and
``assist_handle`` (spatial/cases/workflow.py); an action whose ``data.photos`` names ``photo:<id>`` of no photo
of that case is refused (422, ``check_refs``), so the trail's references always resolve. Other texts there
(a partner system's own links) are kept as they are.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from sqlalchemy import Connection, text

from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import check_add_photo, check_read
from spatial.cases import rows
from spatial.errors import ActionDataError, InvalidPhotoError, NotFoundError, PhotoLimitError, UnsupportedPhotoError

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo decodes; a decompression bomb does not
MAX_EDGE = 4096  # the stored copy's long side, at most
THUMB_EDGE = 480  # the thumbnail's (lists, the phone's own reports): a few tens of kilobytes
MAX_PER_CASE = 20
MAX_PER_REQUEST = 4
CLOSED = ("closed", "voided")
JPEG_QUALITY = 88
MAX_CASE_ID = 2**63 - 1
REF = re.compile(r"^photo:([1-9][0-9]{0,17})$")


class PhotoPublic(TypedDict):
    """A stored photo as the API shows it (the image itself is at ``url``)."""

    id: int
    case_id: int
    ref: str
    url: str
    thumb_url: str
    media_type: str
    width: int
    height: int
    size: int
    created_at: str
    actor: str
    gps: dict[str, float] | None


@dataclass(frozen=True)
class CleanPhoto:
    """An uploaded photo after checking: the re-encoded copy without metadata and what the original said."""

    media_type: str
    width: int
    height: int
    data: bytes
    thumb: bytes  # at most THUMB_EDGE pixels on its long side, same format, no metadata either
    sha256: str  # of the original bytes
    gps: tuple[float, float] | None  # (lon, lat) from the original's EXIF

    def gps_json(self) -> dict[str, float] | None:
        """The GPS position as ``{"lon", "lat"}``, or None."""
        return None if self.gps is None else {"lon": self.gps[0], "lat": self.gps[1]}


def clean(raw: bytes) -> CleanPhoto:
    """Check one uploaded file by its content and return the copy to store (UnsupportedPhotoError: not a JPEG,
    PNG or WebP image; InvalidPhotoError: empty, truncated, corrupt or too many pixels)."""
    if not raw:
        raise InvalidPhotoError("the photo is empty")
    image = _open(raw)
    media_type = FORMATS[str(image.format)]
    if image.format == "JPEG" and max(image.size) > MAX_EDGE:
        image.draft(image.mode, (MAX_EDGE, MAX_EDGE))  # libjpeg decodes at 1/2, 1/4 …: less memory and time
    try:
        gps = exif_location(image.getexif())  # a PNG's EXIF may follow its pixels: reading it may decode them
        image.load()  # decode it whole: a truncated or corrupt file fails here, not later
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((MAX_EDGE, MAX_EDGE))
        data = _encode(upright, str(image.format), image.info.get("icc_profile"))
        small = upright.copy()
        small.thumbnail((THUMB_EDGE, THUMB_EDGE))
        thumb = _encode(small, str(image.format), image.info.get("icc_profile"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidPhotoError(f"the {media_type} image cannot be decoded: it is truncated or corrupt") from exc
    return CleanPhoto(media_type, upright.width, upright.height, data, thumb, hashlib.sha256(raw).hexdigest(), gps)


def _open(raw: bytes) -> Image.Image:
    """Pillow's image of ``raw`` (only the header read yet), refused unless JPEG, PNG or WebP of sane size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=list(FORMATS))
    except UnidentifiedImageError as exc:
        raise UnsupportedPhotoError("the file is not a JPEG, PNG or WebP image (judged by its content)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidPhotoError(f"the image has more than {MAX_PIXELS:,} pixels") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidPhotoError("the image cannot be read: it is truncated or corrupt") from exc
    if image.width * image.height > MAX_PIXELS or image.width < 1 or image.height < 1:
        raise InvalidPhotoError(f"the image is {image.width} × {image.height} pixels: at most {MAX_PIXELS:,} are"
                                " taken")
    return image


def _encode(image: Image.Image, fmt: str, icc: bytes | None) -> bytes:
    """The image in ``fmt`` with no metadata but its colour profile (Pillow writes EXIF, XMP and text chunks
    only when asked to)."""
    out = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
        rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
    elif fmt == "PNG":
        image.save(out, "PNG", **extra)
    else:
        image.save(out, "WEBP", quality=85, **extra)
    return out.getvalue()


def exif_location(exif: Image.Exif) -> tuple[float, float] | None:
    """The (lon, lat) of an EXIF GPS block, or None when it has none or an unusable one (0, 0 included)."""
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "S")
        lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OSError):
        return None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return round(lon, 7), round(lat, 7)


def _degrees(value: Any, ref: Any, negative: str) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals and its N/S or E/W reference."""
    if value is None or len(value) != 3:
        return None
    d, m, s = (float(part) for part in value)
    degrees = d + m / 60 + s / 3600
    if not math.isfinite(degrees):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -degrees if str(ref or "").strip().upper() == negative else degrees


def case_row(conn: Connection, case_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The ``case_get`` row of a case (NotFoundError when absent); ``lock`` holds the case row for the
    transaction, so that two uploads cannot both pass the per-case limit."""
    row = None
    if 0 < case_id <= MAX_CASE_ID:
        if lock:
            rows.lock_case(conn, case_id)
        row = rows.case_row(conn, case_id)
    if row is None:
        raise NotFoundError(f"no case with id {case_id}", case_id=case_id)
    return dict(row)


def admit_upload(conn: Connection, case_id: int, by: Principal) -> None:
    """Refuse, before an upload is read, a caller who may not add photos to the case, a case that takes no
    more (closed, voided, full) or no such case."""
    row = case_row(conn, case_id)
    check_add_photo(by, row)
    _check_room(conn, row, 1)


def _check_room(conn: Connection, row: dict[str, Any], adding: int) -> None:
    if row["state"] in CLOSED:
        raise PhotoLimitError(f"case {row['id']} is {row['state']}: it takes no more photos", case_id=row["id"])
    held = conn.execute(text("SELECT count(*) FROM case_photo WHERE case_id = :id AND reported_at = :month"),
                        {"id": row["id"], "month": row["reported_at"]}).scalar_one()
    if held + adding > MAX_PER_CASE:
        raise PhotoLimitError(f"case {row['id']} holds {held} photos: at most {MAX_PER_CASE} are kept per case",
                              case_id=row["id"], held=held, limit=MAX_PER_CASE)


def add_photos(conn: Connection, case_id: int, photos: list[CleanPhoto], *, by: Principal,
               client: str | None) -> tuple[list[PhotoPublic], int]:
    """Store checked photos with a case in the caller's transaction; return every photo of the request (those
    sent before included) and how many were new. Access is asked again here, on the locked case row."""
    row = case_row(conn, case_id, lock=True)
    check_add_photo(by, row)
    month = row["reported_at"]  # case_photo is partitioned with its case (migration 0035): its month only
    known = set(conn.execute(text("SELECT sha256 FROM case_photo WHERE case_id = :id AND reported_at = :month"),
                             {"id": case_id, "month": month}).scalars())
    fresh = {p.sha256: p for p in photos if p.sha256 not in known}  # the same photo twice in one request: once
    if fresh:
        _check_room(conn, row, len(fresh))
    for photo in fresh.values():
        conn.execute(text(
            "INSERT INTO case_photo (case_id, actor, role, media_type, width, height, size, sha256, gps_lon,"
            " gps_lat, data, thumb, reported_at) VALUES (:case_id, :actor, :role, :media_type, :width, :height, :size,"
            " :sha256, :lon, :lat, :data, :thumb, :month)"),
            {"case_id": case_id, "month": month, "actor": by.login, "role": by.role, "media_type": photo.media_type,
             "width": photo.width, "height": photo.height, "size": len(photo.data), "sha256": photo.sha256,
             "lon": photo.gps and photo.gps[0], "lat": photo.gps and photo.gps[1], "data": photo.data,
             "thumb": photo.thumb})
    stored = _photos(conn, case_id, month, [p.sha256 for p in photos])
    if fresh:
        record(conn, Actor.of(by, client), "case.photo", target=str(case_id),
               detail={"photos": [p["id"] for p in stored if p["sha256"] in fresh],
                       "bytes": sum(len(p.data) for p in fresh.values())})
    return [_public(p) for p in stored], len(fresh)


def _photos(conn: Connection, case_id: int, month: datetime, sha256s: list[str] | None = None,
            ) -> list[dict[str, Any]]:
    """The photos of case ``case_id`` (reported at ``month``: its partition), those of ``sha256s`` only if given."""
    query = ("SELECT id, case_id, media_type, width, height, size, created_at, actor, gps_lon, gps_lat, sha256"
             " FROM case_photo WHERE case_id = :id AND reported_at = :month")
    if sha256s is not None:
        query += " AND sha256 = ANY(:shas)"
    return [dict(r) for r in conn.execute(text(query + " ORDER BY id"),
                                          {"id": case_id, "month": month, "shas": sha256s}).mappings()]


def _public(row: dict[str, Any]) -> PhotoPublic:
    gps = None if row["gps_lon"] is None else {"lon": row["gps_lon"], "lat": row["gps_lat"]}
    url = f"/api/v1/cases/{row['case_id']}/photos/{row['id']}"
    return {"id": row["id"], "case_id": row["case_id"], "ref": f"photo:{row['id']}", "url": url,
            "thumb_url": f"{url}?size=thumb", "media_type": row["media_type"],
            "width": row["width"], "height": row["height"], "size": row["size"],
            "created_at": row["created_at"].isoformat(), "actor": row["actor"], "gps": gps}


def list_photos(conn: Connection, case_id: int, *, by: Principal) -> list[PhotoPublic]:
    """The photos of a case the caller may read (404 no case, 403 outside its scope), oldest first."""
    row = case_row(conn, case_id)
    check_read(by, row)
    return [_public(p) for p in _photos(conn, case_id, row["reported_at"])]


def photo_bytes(conn: Connection, case_id: int, photo_id: int, *, by: Principal,
                thumb: bool = False) -> tuple[str, bytes, str]:
    """The stored image (or its thumbnail) of one photo as (media type, bytes, sha256 of the original) — read
    with the case's read rule; NotFoundError for a photo that is not this case's."""
    case = case_row(conn, case_id)
    check_read(by, case)
    row = None
    if 0 < photo_id <= MAX_CASE_ID:
        column = "thumb" if thumb else "data"  # one of two names written here, never from the request
        row = conn.execute(text(f"SELECT media_type, {column}, sha256 FROM case_photo WHERE id = :p AND case_id = :c"
                                " AND reported_at = :month"), {"p": photo_id, "c": case_id,
                                                               "month": case["reported_at"]}).first()
    if row is None:
        raise NotFoundError(f"case {case_id} has no photo {photo_id}", case_id=case_id, photo_id=photo_id)
    return row[0], bytes(row[1]), row[2]


def check_refs(conn: Connection, case_id: int, refs: Any) -> None:
    """ActionDataError unless every ``photo:<id>`` in an action's ``data.photos`` is a stored photo of the case."""
    if not isinstance(refs, list):
        return
    wanted = {int(m.group(1)): n for n, ref in enumerate(refs) if isinstance(ref, str) and (m := REF.match(ref))}
    if not wanted:
        return
    month = rows.case_months(conn, [case_id]).get(case_id)
    found = set(conn.execute(text("SELECT id FROM case_photo WHERE case_id = :c AND id = ANY(:ids)"
                                  " AND reported_at = :month"),
                             {"c": case_id, "ids": list(wanted), "month": month}).scalars())
    for photo_id, n in wanted.items():
        if photo_id not in found:
            raise ActionDataError(f"data.photos[{n}]: case {case_id} has no photo {photo_id} (upload it first: POST "
                                  f"/api/v1/cases/{case_id}/photos)", parameter=f"data.photos[{n}]")
