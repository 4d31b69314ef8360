"""Photos with a case over HTTP (issue 20) on the real PostGIS world: a report with its photos in one request,
photos added later by the case's actors, read back without metadata; refusals by content, size, role, scope
and state, each storing nothing; a retried upload stored once; audit rows."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image
from sqlalchemy import text

from tests.world import DISTRICT, fresh_accounts, grid_code

PASSWORD = "a long enough password"
WEST = [120.06, 31.17]  # town 001, community 001, grid 002
ACCOUNTS = {
    "ph.insp": ("inspector", DISTRICT), "ph.insp.east": ("inspector", f"{DISTRICT}002"),
    "ph.viewer": ("viewer", DISTRICT), "ph.planner": ("planner", DISTRICT), "ph.disp": ("dispatcher", DISTRICT),
    "ph.chief": ("grid_chief", grid_code(1, 1, 2)),
}
REPORT = '{"category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]}, "description": "垃圾"}'


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


def auth(tokens: dict[str, str], login: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[login]}"}


def photo(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), colour=(200, 30, 30), gps: bool = True,
          orientation: int = 6) -> bytes:
    """An image with EXIF: a camera make, an orientation and (optionally) a GPS position of 120.06 E, 31.17 N."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.Orientation] = orientation
    if gps:
        block = exif.get_ifd(ExifTags.IFD.GPSInfo)
        block[ExifTags.GPS.GPSLatitudeRef] = "N"
        block[ExifTags.GPS.GPSLatitude] = (31.0, 10.0, 12.0)
        block[ExifTags.GPS.GPSLongitudeRef] = "E"
        block[ExifTags.GPS.GPSLongitude] = (120.0, 3.0, 36.0)
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT (SELECT count(*) FROM \"case\"), (SELECT count(*) FROM case_photo),"
            " (SELECT count(*) FROM audit_log WHERE action = 'case.photo')")).one())


def new_case(client, tokens, login: str = "ph.insp", where: list[float] = WEST) -> int:
    reply = client.post("/api/v1/cases", headers=auth(tokens, login),
                        json={"category": "E010101", "location": {"type": "Point", "coordinates": where}})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def test_report_with_photos_stores_case_and_clean_photos_together(client, tokens, world_engine) -> None:
    files = [("photo", ("a.jpg", photo(), "image/jpeg")), ("photo", ("b.png", photo("PNG", gps=False), "image/png"))]
    reply = client.post("/api/v1/cases/with-photos", headers=auth(tokens, "ph.insp") | {"Idempotency-Key": "k1"},
                        data={"report": REPORT}, files=files)
    assert reply.status_code == 201, reply.text
    case = reply.json()
    assert case["grid"]["code"] == grid_code(1, 1, 2) and case["state"] == "reported"
    jpeg, png = case["photos"]
    assert jpeg["media_type"] == "image/jpeg" and png["media_type"] == "image/png"
    assert jpeg["gps"] == {"lon": 120.06, "lat": 31.17} and png["gps"] is None
    assert (jpeg["width"], jpeg["height"]) == (48, 64)  # turned upright by its EXIF orientation (6: 90°)
    assert jpeg["ref"] == f"photo:{jpeg['id']}"
    # The stored copy carries no metadata at all: no EXIF block, no camera name.
    image = client.get(jpeg["url"], headers=auth(tokens, "ph.disp"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in image.content and b"SecretCam" not in image.content
    assert dict(Image.open(io.BytesIO(image.content)).getexif()) == {}
    assert client.get(jpeg["url"], headers=auth(tokens, "ph.disp") | {"If-None-Match": image.headers["etag"]}
                      ).status_code == 304
    thumb = client.get(jpeg["thumb_url"], headers=auth(tokens, "ph.disp"))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["etag"] != image.headers["etag"] and b"SecretCam" not in thumb.content
    assert client.get(jpeg["url"] + "?size=huge", headers=auth(tokens, "ph.disp")).status_code == 422
    # A retry with the same key answers the first attempt: no second case, no second photo.
    before = counts(world_engine)
    again = client.post("/api/v1/cases/with-photos", headers=auth(tokens, "ph.insp") | {"Idempotency-Key": "k1"},
                        data={"report": REPORT}, files=files)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == case["id"] and [p["id"] for p in again.json()["photos"]] == [jpeg["id"], png["id"]]
    assert counts(world_engine) == before
    with world_engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, target, detail FROM audit_log WHERE action = 'case.photo'"
                                  " ORDER BY id DESC LIMIT 1")).one()
    assert audit.actor == "ph.insp" and audit.target == str(case["id"])
    assert sorted(audit.detail["photos"]) == [jpeg["id"], png["id"]]


def test_a_bad_photo_refuses_the_whole_report(client, tokens, world_engine) -> None:
    before = counts(world_engine)
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    cases = {
        415: ("fake.jpg", gif.getvalue(), "image/jpeg"),  # judged by its content, not its name or declared type
        422: ("cut.jpg", photo()[:300], "image/jpeg"),  # truncated
    }
    for status, upload in cases.items():
        reply = client.post("/api/v1/cases/with-photos", headers=auth(tokens, "ph.insp"), data={"report": REPORT},
                            files=[("photo", ("ok.jpg", photo(), "image/jpeg")), ("photo", upload)])
        assert reply.status_code == status, reply.text
        assert reply.headers["content-type"] == "application/problem+json"
    too_big = client.post("/api/v1/cases/with-photos", headers=auth(tokens, "ph.insp"), data={"report": REPORT},
                          files=[("photo", ("big.jpg", b"\xff\xd8" + b"0" * (8 * 1_048_576 + 10), "image/jpeg"))])
    assert too_big.status_code == 413, too_big.text
    # Outside the reporter's area: 403, nothing stored (the photos would have been fine).
    east = client.post("/api/v1/cases/with-photos", headers=auth(tokens, "ph.insp.east"), data={"report": REPORT},
                       files=[("photo", ("ok.jpg", photo(), "image/jpeg"))])
    assert east.status_code == 403, east.text
    assert counts(world_engine) == before


def test_photos_added_later_by_the_cases_actors(client, tokens, world_engine) -> None:
    case_id = new_case(client, tokens)
    url = f"/api/v1/cases/{case_id}/photos"
    upload = [("photo", ("p.webp", photo("WEBP", colour=(10, 200, 10)), "application/octet-stream"))]
    first = client.post(url, headers=auth(tokens, "ph.disp"), files=upload)
    assert first.status_code == 201, first.text
    assert first.json()["photos"][0]["media_type"] == "image/webp"
    # The same photo again (a phone's retry): stored once, 200.
    again = client.post(url, headers=auth(tokens, "ph.disp"), files=upload)
    assert again.status_code == 200 and again.json() == first.json()
    listed = client.get(url, headers=auth(tokens, "ph.viewer"))
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["photos"]] == [first.json()["photos"][0]["id"]]
    # Readers who are not actors (viewer, planner) add nothing; other areas neither read nor add; anonymous 401.
    for login, status in (("ph.viewer", 403), ("ph.planner", 403), ("ph.insp.east", 403)):
        assert client.post(url, headers=auth(tokens, login), files=upload).status_code == status
    assert client.get(url, headers=auth(tokens, "ph.insp.east")).status_code == 403
    assert client.get(first.json()["photos"][0]["url"], headers=auth(tokens, "ph.insp.east")).status_code == 403
    assert client.get(url, headers={"Authorization": ""}).status_code == 401
    assert client.post("/api/v1/cases/999999/photos", headers=auth(tokens, "ph.disp"), files=upload).status_code == 404
    assert client.get(f"{url}/999999", headers=auth(tokens, "ph.disp")).status_code == 404
    # Not multipart: 415; a photo field that is not a file: 400.
    assert client.post(url, headers=auth(tokens, "ph.disp"), content=b"x").status_code == 415
    assert client.post(url, headers=auth(tokens, "ph.disp"), files=[("photo", (None, "text"))]).status_code == 400


def test_a_case_takes_at_most_its_limit_and_nothing_once_closed(client, tokens, world_engine) -> None:
    from spatial.cases.photos import MAX_PER_CASE, MAX_PER_REQUEST

    case_id = new_case(client, tokens)
    url = f"/api/v1/cases/{case_id}/photos"
    shade = iter(range(256))
    for _ in range(MAX_PER_CASE // MAX_PER_REQUEST):
        batch = [("photo", (f"{n}.png", photo("PNG", size=(4, 4), colour=(next(shade), 0, 0), gps=False), "image/png"))
                 for n in range(MAX_PER_REQUEST)]
        assert client.post(url, headers=auth(tokens, "ph.insp"), files=batch).status_code == 201
    more = client.post(url, headers=auth(tokens, "ph.insp"),
                       files=[("photo", ("x.png", photo("PNG", size=(4, 4), colour=(0, 0, 255)), "image/png"))])
    assert more.status_code == 409 and more.json()["type"].endswith("photo-limit"), more.text
    other = new_case(client, tokens)
    with world_engine.begin() as conn:
        conn.execute(text("UPDATE \"case\" SET state = 'voided' WHERE id = :id"), {"id": other})
    closed = client.post(f"/api/v1/cases/{other}/photos", headers=auth(tokens, "ph.insp"),
                         files=[("photo", ("x.png", photo("PNG"), "image/png"))])
    assert closed.status_code == 409, closed.text


def test_inspect_offers_the_photos_location_and_stores_nothing(client, tokens, world_engine) -> None:
    before = counts(world_engine)
    reply = client.post("/api/v1/photos/inspect", headers=auth(tokens, "ph.insp"),
                        files=[("photo", ("a.jpg", photo(), "image/jpeg"))])
    assert reply.status_code == 200, reply.text
    assert reply.json()["gps"] == {"lon": 120.06, "lat": 31.17}
    assert counts(world_engine) == before
    assert client.post("/api/v1/photos/inspect", headers=auth(tokens, "ph.viewer"),
                       files=[("photo", ("a.jpg", photo(), "image/jpeg"))]).status_code == 403


def _act(client, tokens, login: str, case_id: int, action: str, status: int = 200, **body):
    etag = client.get(f"/api/v1/cases/{case_id}", headers=auth(tokens, login)).headers["etag"]
    reply = client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body,
                        headers=auth(tokens, login) | {"If-Match": etag})
    assert reply.status_code == status, reply.text
    return reply.json()


def test_the_handling_feedback_refers_to_the_cases_own_photos(client, tokens) -> None:
    case_id = new_case(client, tokens)  # grid-first at grid 1-1-2: its grid chief handles it
    other = new_case(client, tokens, where=[120.09, 31.13])  # not a duplicate of the first
    _act(client, tokens, "ph.disp", case_id, "register")
    _act(client, tokens, "ph.disp", case_id, "dispatch")
    _act(client, tokens, "ph.chief", case_id, "accept")
    mine = client.post(f"/api/v1/cases/{case_id}/photos", headers=auth(tokens, "ph.chief"),
                       files=[("photo", ("after.jpg", photo(colour=(1, 250, 1)), "image/jpeg"))]).json()["photos"][0]
    foreign = client.post(f"/api/v1/cases/{other}/photos", headers=auth(tokens, "ph.disp"),
                          files=[("photo", ("x.jpg", photo(colour=(250, 1, 250)), "image/jpeg"))]).json()["photos"][0]
    refused = _act(client, tokens, "ph.chief", case_id, "handle", 422, note="已清理",
                   data={"photos": [mine["ref"], foreign["ref"]]})
    assert refused["parameter"] == "data.photos[1]"
    case = _act(client, tokens, "ph.chief", case_id, "handle", note="已清理", data={"photos": [mine["ref"]]})
    handle = next(e for e in case["history"] if e["kind"] == "handle")
    assert handle["data"] == {"photos": [mine["ref"]]} and case["state"] == "handled"
