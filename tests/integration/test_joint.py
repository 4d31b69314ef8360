"""Joint handling (协办, issue 17 item 2) over HTTP: a lead unit and two assisting units on one case, each with
its own acceptance, feedback and deadline; the case closes when the lead's work passes the check while an
assisting unit's work is still open (it stays open in ``case_unit``: not handled); an assisting unit's
handlers read the case and find it in their inbox, other departments do not; the whole event trail, the
stored units and the audit rows are asserted. Also the refusals of a dispatch's ``assist`` list (nothing is
stored), re-dispatch after a return adding a unit, and a void withdrawing the units still at work."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import text

from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit
from spatial.cases.inbox import duties_now, inbox_clause
from spatial.cases.joint import assisting
from spatial.cases.workflow import Event, replay
from spatial.store.models import Case
from spatial.store.partitions import open_span
from tests.integration.test_workflow import Desk
from tests.plans import root_indexes
from tests.world import DISTRICT, fresh_accounts, grid_code

PASSWORD = "a long enough password"
GRID = grid_code(1, 1, 2)
TOWN_CODE = f"{DISTRICT}001"
ACCOUNTS = {
    "jt.disp.a": ("dispatcher", DISTRICT), "jt.disp.b": ("dispatcher", DISTRICT), "jt.insp": ("inspector", DISTRICT),
    "jt.chief": ("grid_chief", GRID), "jt.san": ("handler", "SANITATION"), "jt.lights": ("handler", "LIGHTING"),
    "jt.parks": ("handler", "PARKS"), "jt.admin": ("admin", "*"), "jt.town": ("handler", "TOWN"),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


class Joint(Desk):
    """A ``Desk`` read by this module's dispatcher."""

    def read(self, login: str = "jt.disp.a") -> tuple[dict, str]:
        return super().read(login)

    def status(self, login: str) -> int:
        return self.client.get(f"/api/v1/cases/{self.id}", headers=self.headers(login)).status_code

    def units(self) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT unit_key, unit_area, role, state, accepted_at IS NOT NULL, handled_at IS NOT NULL"
                " FROM case_unit WHERE case_id = :c ORDER BY unit_key"), {"c": self.id})]

    def inbox(self, login: str) -> dict[int, list[str]]:
        reply = self.client.get("/api/v1/inbox", headers=self.headers(login))
        assert reply.status_code == 200, reply.text
        return {c["id"]: c["duties"] for c in reply.json()["cases"]}


@pytest.fixture
def desk(client, tokens, world_engine) -> Joint:
    """A fresh grid-first case (exposed garbage in grid 001001002: its lead is the grid chief), registered."""
    desk = Joint(client, tokens, world_engine)
    desk.act("jt.disp.a", "register")
    return desk


TWO = [{"key": "SANITATION"}, {"key": "LIGHTING", "amount": 2, "unit": "working_days"}]


def test_joint_handling_with_two_assisting_units(desk: Joint, reference) -> None:
    assert desk.status("jt.san") == 403  # not yet its case
    case = desk.act("jt.disp.a", "dispatch", assist=TWO)
    dispatched = case["history"][-1]
    moment = datetime.fromisoformat(dispatched["at"])
    lights_due = reference.calendar.deadline(moment, 2, "working_days")
    assert dispatched["data"] == {"to": "GRID_CHIEF", "area": GRID, "assist": [
        {"key": "SANITATION", "area": None, "deadline": case["deadline"]},
        {"key": "LIGHTING", "area": None, "limit": {"amount": 2, "unit": "working_days"},
         "deadline": lights_due.isoformat()}]}
    units = {u["key"]: u for u in case["workflow"]["assist"]}
    assert units["SANITATION"]["deadline"] == case["deadline"] and units["SANITATION"]["state"] == "dispatched"
    assert datetime.fromisoformat(units["LIGHTING"]["deadline"]) == lights_due
    assert case["owner"]["key"] == "GRID_CHIEF"  # the lead stays the case's owner

    # An assisting unit's handlers read the case and find it in their inbox; another department does not.
    assert desk.status("jt.san") == 200 and desk.status("jt.lights") == 200 and desk.status("jt.parks") == 403
    assert desk.read("jt.san")[0]["workflow"]["allowed_actions"] == ["assist_accept"]
    assert desk.inbox("jt.san") == {desk.id: ["assist_accept"]}
    assert desk.inbox("jt.lights") == {desk.id: ["assist_accept"]}
    assert desk.inbox("jt.parks") == {}
    assert desk.inbox("jt.chief") == {desk.id: ["accept", "handle"]}
    listed = desk.client.get("/api/v1/cases", headers=desk.headers("jt.san")).json()["cases"]
    assert [c["id"] for c in listed] == [desk.id]
    for login, seen in (("jt.san", [desk.id]), ("jt.parks", [])):
        items = desk.client.get("/ogc/collections/cases/items", headers=desk.headers(login)).json()["features"]
        assert [f["id"] for f in items] == seen
    assert desk.client.get(f"/ogc/collections/cases/items/{desk.id}", headers=desk.headers("jt.lights")).status_code \
        == 200
    assert desk.client.get(f"/open311/v2/requests/{desk.id}.json", headers=desk.headers("jt.lights")).status_code \
        == 200

    # Each assisting unit acts for itself only; the lead's unit is not an assisting one.
    assert desk.act("jt.chief", "assist_accept", status=403)["type"].endswith("/forbidden")
    assert desk.act("jt.san", "assist_handle", note="x", status=409)["allowed"] == ["assist_accept"]
    assert desk.act("jt.san", "assist_accept", data={"unit": "LIGHTING"}, status=403)["unit"] == "LIGHTING"
    assert desk.act("jt.admin", "assist_accept", status=422)["parameter"] == "data.unit"  # acts for both
    desk.act("jt.san", "assist_accept", note="环卫已接单")
    assert desk.act("jt.san", "assist_accept", status=409)["allowed"] == ["assist_handle"]
    assert desk.act("jt.san", "assist_handle", status=422)["parameter"] == "note"
    desk.act("jt.san", "assist_handle", note="垃圾已清运", data={"photos": ["photo://s1"]})
    assert desk.inbox("jt.san") == {}

    # The lead's work passes the check: the case closes though LIGHTING never accepted.
    desk.act("jt.chief", "accept")
    desk.act("jt.chief", "handle", note="已清理")
    assert desk.inbox("jt.lights") == {desk.id: ["assist_accept"]}  # still waited for while the case is open
    desk.act("jt.insp", "check", data={"result": "pass"})
    case = desk.act("jt.disp.a", "close")
    assert case["state"] == "closed"
    assert desk.act("jt.lights", "assist_accept", status=409)["allowed"] == []
    assert desk.inbox("jt.lights") == {} and desk.status("jt.lights") == 200

    assert desk.trail() == [
        ("report", "reported", "api:inspector", None), ("register", "registered", "jt.disp.a", "dispatcher"),
        ("dispatch", "dispatched", "jt.disp.a", "dispatcher"), ("assist_accept", None, "jt.san", "handler"),
        ("assist_handle", None, "jt.san", "handler"), ("accept", None, "jt.chief", "grid_chief"),
        ("handle", "handled", "jt.chief", "grid_chief"), ("check", None, "jt.insp", "inspector"),
        ("close", "closed", "jt.disp.a", "dispatcher")]
    history = desk.read()[0]["history"]
    assert history[3]["data"] == {"unit": "SANITATION"} and history[3]["note"] == "环卫已接单"
    assert history[4]["data"] == {"unit": "SANITATION", "photos": ["photo://s1"]}
    assert desk.units() == [("LIGHTING", None, "assist", "dispatched", False, False),
                            ("SANITATION", None, "assist", "handled", True, True)]
    with desk.engine.connect() as conn:
        keys = conn.execute(text('SELECT assist_keys FROM "case" WHERE id = :c'), {"c": desk.id}).scalar_one()
    assert keys == ["LIGHTING", "SANITATION"]
    assert desk.audit() == [
        ("jt.disp.a", "dispatcher", "case.register"), ("jt.disp.a", "dispatcher", "case.dispatch"),
        ("jt.san", "handler", "case.assist_accept"), ("jt.san", "handler", "case.assist_handle"),
        ("jt.chief", "grid_chief", "case.accept"), ("jt.chief", "grid_chief", "case.handle"),
        ("jt.insp", "inspector", "case.check"), ("jt.disp.a", "dispatcher", "case.close")]


def test_a_dispatch_naming_wrong_assisting_units_stores_nothing(desk: Joint) -> None:
    wrong = [([{"key": "NOPE"}], "assist[0].key"), ([{"key": "GRID_CHIEF", "area": GRID}], "assist[0].key"),
             ([{"key": "SANITATION"}, {"key": "SANITATION"}], "assist[1].key"),
             ([{"key": "TOWN"}], "assist[0].area"), ([{"key": "PARKS", "area": f"{DISTRICT}002"}], "assist[0].area"),
             ([{"key": "PARKS", "amount": 2}], "assist[0].unit"),
             ([{"key": "PARKS", "amount": 99, "unit": "working_days"}], "assist[0].amount")]
    for assist, parameter in wrong:
        assert desk.act("jt.disp.a", "dispatch", assist=assist, status=422)["parameter"] == parameter, assist
    assert desk.act("jt.disp.a", "dispatch", assist=[{"key": "PARKS", "nope": 1}], status=422)
    assert desk.act("jt.disp.a", "dispatch", assist=[{"key": "PARKS"}] * 11, status=422)
    assert desk.act("jt.disp.a", "void", assist=[{"key": "PARKS"}], reason="重复",
                    status=422)["parameter"] == "assist"  # only a dispatch names assisting units
    # A caller's data may not forge the list a dispatch keeps.
    case = desk.act("jt.disp.a", "dispatch", data={"assist": ["PARKS"]})
    assert case["history"][-1]["data"] == {"to": "GRID_CHIEF", "area": GRID} and "assist" not in case["workflow"]
    assert desk.units() == [] and [k for k, *_ in desk.trail()] == ["report", "register", "dispatch"]
    assert desk.act("jt.parks", "assist_accept", status=403)  # outside its scope: not its case


def test_return_redispatch_adds_a_unit_and_void_withdraws_those_at_work(desk: Joint) -> None:
    desk.act("jt.disp.a", "dispatch", assist=[{"key": "SANITATION"}])
    desk.act("jt.san", "assist_accept")
    desk.act("jt.chief", "return", reason="需要执法力量")
    desk.act("jt.disp.b", "approve")  # escalated: the town leads now
    assert desk.act("jt.disp.a", "dispatch", assist=[{"key": "SANITATION"}], status=422)["parameter"] == \
        "assist[0].key"  # already assisting
    assert desk.act("jt.disp.a", "dispatch", assist=[{"key": "TOWN", "area": TOWN_CODE}],
                    status=422)["parameter"] == "assist[0].key"  # the lead itself
    case = desk.act("jt.disp.a", "dispatch", assist=[{"key": "LIGHTING"}])
    assert case["owner"]["key"] == "TOWN" and [u["key"] for u in case["workflow"]["assist"]] == ["SANITATION",
                                                                                                  "LIGHTING"]
    desk.act("jt.lights", "assist_accept")
    desk.act("jt.lights", "assist_handle", note="路灯已修复")
    desk.act("jt.town", "return", reason="非本街道职责")
    desk.act("jt.disp.b", "approve")
    desk.act("jt.disp.a", "void", reason="重复上报")
    case = desk.act("jt.disp.b", "approve")
    assert case["state"] == "voided"
    assert desk.units() == [("LIGHTING", None, "assist", "handled", True, True),
                            ("SANITATION", None, "assist", "withdrawn", True, False)]
    assert [k for k, *_ in desk.trail()] == [
        "report", "register", "dispatch", "assist_accept", "request", "approve", "return", "dispatch",
        "assist_accept", "assist_handle", "request", "approve", "return", "request", "approve", "void"]
    assert [a for *_, a in desk.audit()] == [
        "case.register", "case.dispatch", "case.assist_accept", "case.return", "case.approve", "case.dispatch",
        "case.assist_accept", "case.assist_handle", "case.return", "case.approve", "case.void", "case.approve"]


def test_the_sql_inbox_agrees_with_the_table_on_joint_cases(desk: Joint, world_engine) -> None:
    """For every account of the module, the SQL inbox holds a joint case exactly when the replayed trail gives
    the account a duty on it (as tests/integration/test_inbox.py checks for single-unit cases)."""
    desk.act("jt.disp.a", "dispatch", assist=TWO)
    desk.act("jt.san", "assist_accept")
    with world_engine.connect() as conn:
        row = conn.execute(text('SELECT owner_key, owner_area_code, special_grid_codes FROM "case" WHERE id = :c'),
                           {"c": desk.id}).one()
        trail = replay(Event(r.kind, r.state_after, r.actor, r.role, r.data, r.id) for r in conn.execute(text(
            "SELECT id, kind, state_after, actor, role, data FROM case_event WHERE case_id = :c ORDER BY at, id"),
            {"c": desk.id}))
        for n, (login, (role, scope)) in enumerate(ACCOUNTS.items()):
            by = Principal(n, login, role, scope)
            units = assisting(by, trail, row.special_grid_codes)
            duties = duties_now(trail, by, acts_for_unit(by, row.owner_key, row.owner_area_code), units)
            held = conn.execute(Case.__table__.select().with_only_columns(Case.id)
                                .where(Case.id == desk.id, inbox_clause(by, open_span(conn)))).first() is not None
            assert held == bool(duties) and (role != "dispatcher" or not duties), (login, duties)
            if login in ("jt.san", "jt.lights"):
                assert duties == (["assist_handle"] if login == "jt.san" else ["assist_accept"])


def test_cli_dispatches_with_assisting_units(desk: Joint, world_engine, capsys, monkeypatch) -> None:
    from api.cli import main

    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    assert main(["cases", "act", str(desk.id), "dispatch", "--as", "jt.disp.a", "--assist", "TOWN"]) == 1
    assert "422 assist[0]: TOWN acts for a place" in capsys.readouterr().err
    assert main(["cases", "act", str(desk.id), "dispatch", "--as", "jt.disp.a", "--assist", "SANITATION",
                 "--assist", f"TOWN:{TOWN_CODE}"]) == 0
    assert desk.units() == [("SANITATION", None, "assist", "dispatched", False, False),
                            ("TOWN", TOWN_CODE, "assist", "dispatched", False, False)]
    assert main(["cases", "act", str(desk.id), "assist_accept", "--as", "jt.town"]) == 0
    assert "dispatched (revision 4; events assist_accept)" in capsys.readouterr().out
    assert desk.units()[1][3] == "accepted"
    assert [a for *_, a in desk.audit()] == ["case.register", "case.dispatch", "case.assist_accept"]


def test_a_departments_case_list_can_use_the_owner_and_assist_indexes(world_engine) -> None:
    """The handlers' scope (``owner_key = KEY OR KEY assists``) is a BitmapOr of ix_case_owner_key and the
    partial GIN ix_case_assist_keys — the clause repeats the index's predicate so the planner may use it (the
    world is too small for a cost-based choice, so scans other than bitmap ones are switched off)."""
    from sqlalchemy import select

    from spatial.access.scope import case_clause

    by = Principal(1, "jt.san", "handler", "SANITATION")
    query = select(Case.id).where(case_clause(by, grid_code=Case.grid_code, special_codes=Case.special_grid_codes,
                                              owner_key=Case.owner_key, assist_keys=Case.assist_keys))
    with world_engine.connect() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_indexscan = off"))
        sql = str(query.compile(world_engine, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
        # each month of "case" (migration 0031) through its copies of the two indexes
        used = root_indexes(conn, re.findall(r"Bitmap Index Scan on (\S+)", plan))
    assert "BitmapOr" in plan and {"ix_case_owner_key", "ix_case_assist_keys"} <= used, plan
