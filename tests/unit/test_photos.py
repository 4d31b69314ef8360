"""Photo checking without a database (spatial/cases/photos.py): by content, not by name; EXIF GPS read in every
hemisphere; the stored copy upright, bounded and without metadata; decompression bombs refused from the header."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import ExifTags, Image

from spatial.cases.photos import MAX_EDGE, THUMB_EDGE, clean, exif_location
from spatial.errors import InvalidPhotoError, UnsupportedPhotoError


def _exif(lat: tuple, lat_ref: str, lon: tuple, lon_ref: str, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Model] = "SerialNo-12345"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = lat_ref, lat
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = lon_ref, lon
    return exif


def _image(fmt: str, size=(30, 20), exif: Image.Exif | None = None, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    extra = {"exif": exif.tobytes()} if exif else {}
    Image.new(mode, size, 128 if mode == "L" else (10, 20, 30)).save(out, fmt, **extra)
    return out.getvalue()


@pytest.mark.parametrize(("lat_ref", "lon_ref", "expected"), [
    ("N", "E", (120.5, 31.25)), ("S", "W", (-120.5, -31.25)), ("N", "W", (-120.5, 31.25))])
def test_gps_in_every_hemisphere(lat_ref: str, lon_ref: str, expected: tuple) -> None:
    exif = _exif((31.0, 15.0, 0.0), lat_ref, (120.0, 30.0, 0.0), lon_ref)
    assert exif_location(Image.open(io.BytesIO(_image("JPEG", exif=exif))).getexif()) == expected


def test_no_gps_and_null_island_are_none() -> None:
    assert exif_location(Image.open(io.BytesIO(_image("JPEG"))).getexif()) is None
    zero = _exif((0.0, 0.0, 0.0), "N", (0.0, 0.0, 0.0), "E")
    assert exif_location(Image.open(io.BytesIO(_image("JPEG", exif=zero))).getexif()) is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_stored_copy_is_upright_and_without_metadata(fmt: str) -> None:
    exif = _exif((31.0, 15.0, 0.0), "N", (120.0, 30.0, 0.0), "E", orientation=8)  # 90° the other way
    photo = clean(_image(fmt, exif=exif))
    assert photo.media_type == f"image/{fmt.lower()}" and (photo.width, photo.height) == (20, 30)
    assert photo.gps == (120.5, 31.25)
    stored = Image.open(io.BytesIO(photo.data))
    assert stored.format == fmt and dict(stored.getexif()) == {}
    assert b"SerialNo" not in photo.data and b"Exif" not in photo.data


def test_large_photos_are_bounded_and_grey_jpeg_stays_grey() -> None:
    photo = clean(_image("JPEG", size=(MAX_EDGE * 2, 100), mode="L"))
    assert (photo.width, photo.height) == (MAX_EDGE, 50)
    assert Image.open(io.BytesIO(photo.data)).mode == "L"
    thumb = Image.open(io.BytesIO(photo.thumb))
    assert thumb.format == "JPEG" and thumb.size == (THUMB_EDGE, 6) and dict(thumb.getexif()) == {}


def test_refused_by_content() -> None:
    with pytest.raises(UnsupportedPhotoError):
        clean(_image("GIF"))
    with pytest.raises(UnsupportedPhotoError):
        clean(b"%PDF-1.7 not a photo")
    with pytest.raises(InvalidPhotoError):
        clean(b"")
    with pytest.raises(InvalidPhotoError):
        clean(_image("PNG", size=(200, 200))[:120])  # truncated


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels (and a tiny, wrong body)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [8_000, 30_000])  # 64 MP (above the limit), 900 MP (Pillow's own bomb error)
def test_decompression_bombs_are_refused_from_the_header(side: int) -> None:
    with pytest.raises(InvalidPhotoError, match="pixels"):
        clean(_png_header(side, side))
