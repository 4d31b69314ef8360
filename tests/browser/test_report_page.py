"""The inspector's phone page (/report, issue 20 item 5) in Chromium at 390 × 844 against a live server on the
small demo: locate (accuracy shown), pick a category by searching, attach a photo whose GPS position is offered
as the location, submit with the network cut — the report waits in the IndexedDB queue, nothing reaches the
server — then restore the network with the first reply lost on the way back (the server stored the case, the
phone did not hear it), reload (the queue survives), and see the case arrive exactly once, with its photo, in
the inspector's own recent reports. Screenshot in Chinese; axe-core finds no serious violation."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import ExifTags, Image
from sqlalchemy import text

from tests.browser.conftest import PASSWORD, PHONE_VIEWPORT, PageErrors, axe_violations, screenshot


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def jpeg_at(lon: float, lat: float) -> bytes:
    """A photo with an EXIF GPS position (and a camera make that must not survive the upload)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", _dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", _dms(lon)
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 60)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _points(engine, town: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two places inside two base grids of ``town`` (where the phone is, where the photo was taken)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM grid_geometry gg, ST_PointOnSurface(gg.geom) p"
            " WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND gg.grid_code LIKE :t ORDER BY gg.grid_code LIMIT 2"),
            {"t": town + "%"}).all()
    return (rows[0][0], rows[0][1]), (rows[1][0], rows[1][1])


@pytest.fixture
def phone(browser, demo):
    """A phone-sized page in Chinese whose position is a base grid of the demo's town (geolocation granted)."""
    here, _ = _points(demo.engine, demo.town)
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  geolocation={"longitude": here[0], "latitude": here[1], "accuracy": 12},
                                  permissions=["geolocation"], service_workers="block", is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.errors = PageErrors()
    page.on("pageerror", lambda exc: page.errors.append(f"exception: {exc}"))
    yield page
    context.close()


def log_in(page, login: str) -> None:
    """Log in through the shell's dialog (on a phone the shell does not show the login name: wait for its text)."""
    page.click("#gl-login-open")
    page.fill("#gl-login-user", login)
    page.fill("#gl-login-pass", PASSWORD)
    page.click("#gl-login-form button[type=submit]")
    page.wait_for_function("login => document.getElementById('gl-who').textContent.includes(login)", arg=login)


def _cases(engine, description: str) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT c.id, (SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) FROM \"case\" c"
            " WHERE c.description = :d"), {"d": description})]


def test_report_filed_offline_arrives_exactly_once(demo, phone) -> None:
    page = phone
    here, there = _points(demo.engine, demo.town)
    description = f"离线上报测试 {uuid.uuid4().hex[:8]}"
    page.goto(f"{demo.url}/report")
    page.wait_for_function("() => document.body.dataset.ready === 'report'")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    log_in(page, demo.accounts["inspector"])
    assert page.is_visible("#rp-login-hint") is False

    page.click("#rp-locate")
    page.wait_for_function("() => document.getElementById('rp-lon').value !== ''")
    assert "精度约 12 米" in page.text_content("#rp-accuracy")
    assert abs(float(page.input_value("#rp-lon")) - here[0]) < 1e-5
    page.wait_for_selector("#rp-grid:has-text('所属网格')")

    page.fill("#rp-cat-search", "暴露垃圾")
    page.click("#rp-cat-list button[data-code='E010101']")
    assert "暴露垃圾" in page.text_content("#rp-cat-chosen")

    page.set_input_files("#rp-photo", files=[{"name": "现场.jpg", "mimeType": "image/jpeg",
                                             "buffer": jpeg_at(*there)}])
    page.click("#rp-photos button[data-use='0']")  # offered once the server has read the photo's GPS
    assert abs(float(page.input_value("#rp-lon")) - there[0]) < 1e-5
    page.fill("#rp-description", description)

    # The network is cut: the report waits in the queue and nothing reaches the server.
    page.context.set_offline(True)
    page.click("#rp-submit")
    page.wait_for_selector("#rp-queue[data-count='1']")
    page.wait_for_selector("#rp-queue li[data-state='waiting']")
    assert page.text_content("#rp-net") == "当前离线"
    assert _cases(demo.engine, description) == []

    # Back online, but the first reply is lost on its way back: the server stores the case, the phone hears
    # nothing and keeps the report; later attempts find no network until the page is reloaded.
    attempts: list[str] = []

    def flaky(route) -> None:
        if not attempts:
            route.fetch()  # reaches the server ...
            attempts.append("stored, reply lost")
            route.abort("connectionreset")  # ... and the answer never arrives
        else:
            attempts.append("no network")
            route.abort("internetdisconnected")

    page.route("**/api/v1/cases/with-photos", flaky)
    page.context.set_offline(False)
    page.wait_for_function("() => window.glReport.state.queue.length === 1"
                           " && window.glReport.state.queue[0].attempts >= 1 && !window.glReport.sender.running")
    assert attempts[0] == "stored, reply lost"
    first = _cases(demo.engine, description)
    assert len(first) == 1 and first[0][1] == 1  # the case and its photo, stored in one transaction

    page.reload()  # the queue is in IndexedDB: it survives the reload
    page.wait_for_function("() => document.body.dataset.ready === 'report'")
    page.wait_for_selector("#rp-queue[data-count='1']")
    replies: list[int] = []
    page.on("response", lambda r: replies.append(r.status) if r.url.endswith("/cases/with-photos") else None)
    page.unroute("**/api/v1/cases/with-photos")
    page.wait_for_selector("#rp-queue[data-count='0']", timeout=90_000)  # the next retry goes through

    # Exactly one case, with its one photo: the retry carried the same Idempotency-Key and was answered with the
    # first attempt's case (200, replayed).
    stored = _cases(demo.engine, description)
    assert len(stored) == 1 and stored[0][1] == 1
    assert replies == [200]
    case_id = stored[0][0]
    page.wait_for_selector(f"#rp-mine li[data-id='{case_id}']")
    assert "待立案" in page.text_content(f"#rp-mine li[data-id='{case_id}']")
    with demo.engine.connect() as conn:
        data = conn.execute(text("SELECT data FROM case_photo WHERE case_id = :c"), {"c": case_id}).scalar_one()
    assert b"PhoneCam" not in bytes(data) and b"Exif" not in bytes(data)

    screenshot(page, "report-phone")
    assert page.evaluate("window.innerWidth") == 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    assert axe_violations(page) == []
    assert page.errors == []


def test_page_opens_offline_from_its_service_worker_and_keeps_the_queue(browser, demo) -> None:
    here, _ = _points(demo.engine, demo.town)
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  geolocation={"longitude": here[0], "latitude": here[1], "accuracy": 30},
                                  permissions=["geolocation"])
    page = context.new_page()
    description = f"无信号上报 {uuid.uuid4().hex[:8]}"
    try:
        page.goto(f"{demo.url}/report")
        page.wait_for_function("() => document.body.dataset.ready === 'report'")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        context.set_offline(True)
        page.reload()  # no network at all: the service worker's copy of the page answers
        page.wait_for_function("() => document.body.dataset.ready === 'report'")
        assert page.text_content("h1") == "问题上报" and page.text_content("#rp-net") == "当前离线"
        page.click("#rp-locate")
        page.wait_for_function("() => document.getElementById('rp-lon').value !== ''")
        page.fill("#rp-cat-search", "E010101")  # the category list was kept from the online visit
        page.click("#rp-cat-list button[data-code='E010101']")
        page.fill("#rp-description", description)
        page.click("#rp-submit")
        page.wait_for_selector("#rp-queue[data-count='1']")
        page.reload()
        page.wait_for_function("() => document.body.dataset.ready === 'report'")
        page.wait_for_selector("#rp-queue[data-count='1']")  # still queued after an offline reload
        context.set_offline(False)
        log_in(page, demo.accounts["inspector"])  # the session opens: the queue is sent
        page.wait_for_selector("#rp-queue[data-count='0']", timeout=60_000)
        assert len(_cases(demo.engine, description)) == 1
    finally:
        context.close()
