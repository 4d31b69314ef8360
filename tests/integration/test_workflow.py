"""The case workflow over HTTP (issue 17): real cases walked through every path by accounts of the right roles
— straight closure, rework, return and re-dispatch (a grid chief's return escalates to the town), extension
approved and refused, suspension and resumption, void with approval, reopen — each asserting the whole event
trail and the audit rows; and the refusals: 401, 403 (role, unit, scope, own approval), 404, 409 with the
allowed actions, 412 stale, 428 missing, 422 what an action lacks."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.world import DISTRICT, fresh_accounts, grid_code

PASSWORD = "a long enough password"
WEST = [120.06, 31.17]  # town 001, community 001, grid 002
GRID = grid_code(1, 1, 2)
TOWN_CODE = f"{DISTRICT}001"
ACCOUNTS = {
    "wf.disp.a": ("dispatcher", DISTRICT), "wf.disp.b": ("dispatcher", DISTRICT),
    "wf.insp": ("inspector", DISTRICT), "wf.chief": ("grid_chief", GRID),
    "wf.chief.other": ("grid_chief", grid_code(1, 1, 1)), "wf.town": ("handler", "TOWN"),
    "wf.lights": ("handler", "LIGHTING"), "wf.viewer": ("viewer", DISTRICT),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


class Desk:
    """The test's accounts acting on one case over HTTP, each action sent with the ETag it just read."""

    def __init__(self, client: TestClient, tokens: dict[str, str], engine) -> None:
        self.client, self.tokens, self.engine = client, tokens, engine
        with engine.connect() as conn:
            self.audit_from = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
        reply = client.post("/api/v1/cases", json={"category": "E010101", "source": "inspector",
                                                   "location": {"type": "Point", "coordinates": WEST}})
        assert reply.status_code == 201, reply.text
        self.id = reply.json()["id"]

    def headers(self, login: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[login]}" if login else ""}

    def read(self, login: str = "wf.disp.a") -> tuple[dict, str]:
        reply = self.client.get(f"/api/v1/cases/{self.id}", headers=self.headers(login))
        assert reply.status_code == 200, reply.text
        return reply.json(), reply.headers["etag"]

    def act(self, login: str | None, action: str, status: int = 200, etag: str | None = "read", **body) -> dict:
        headers = self.headers(login)
        if etag == "read":
            etag = self.read()[1]
        if etag is not None:
            headers["If-Match"] = etag
        reply = self.client.post(f"/api/v1/cases/{self.id}/actions/{action}", json=body, headers=headers)
        assert reply.status_code == status, reply.text
        if status == 200:
            assert reply.headers["etag"] == f'"{reply.json()["workflow"]["revision"]}"'
        return reply.json()

    def trail(self) -> list[tuple]:
        case, _ = self.read()
        return [(e["kind"], e["state"], e["actor"], e["role"]) for e in case["history"]]

    def audit(self) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT actor, role, action FROM audit_log WHERE id > :after AND target = :t"
                " AND action <> 'case.create' ORDER BY id"), {"after": self.audit_from, "t": str(self.id)})]


@pytest.fixture
def desk(client, tokens, world_engine) -> Desk:
    """A fresh grid-first case (exposed garbage in grid 001001002: owner its grid chief)."""
    return Desk(client, tokens, world_engine)


REPORT = ("report", "reported", "api:inspector", None)
REGISTERED = [REPORT, ("register", "registered", "wf.disp.a", "dispatcher")]
DISPATCHED = [*REGISTERED, ("dispatch", "dispatched", "wf.disp.a", "dispatcher")]


def _to_dispatched(desk: Desk) -> None:
    desk.act("wf.disp.a", "register", note="核实属实")
    desk.act("wf.disp.a", "dispatch")


def test_straight_closure(desk: Desk) -> None:
    _to_dispatched(desk)
    desk.act("wf.chief", "accept")
    desk.act("wf.chief", "handle", note="已清理", data={"photos": ["photo://1", "photo://2"]})
    desk.act("wf.insp", "check", data={"result": "pass"})
    case = desk.act("wf.disp.a", "close")
    assert case["state"] == "closed" and case["closed_at"] is not None
    case = desk.act("wf.disp.a", "evaluate", data={"satisfaction": "satisfied"})
    assert desk.trail() == [*DISPATCHED, ("accept", None, "wf.chief", "grid_chief"),
                            ("handle", "handled", "wf.chief", "grid_chief"), ("check", None, "wf.insp", "inspector"),
                            ("close", "closed", "wf.disp.a", "dispatcher"),
                            ("evaluate", None, "wf.disp.a", "dispatcher")]
    handle = case["history"][4]
    assert handle["note"] == "已清理" and handle["data"] == {"photos": ["photo://1", "photo://2"]}
    assert case["history"][2]["data"] == {"to": "GRID_CHIEF", "area": GRID}
    assert desk.audit() == [("wf.disp.a", "dispatcher", "case.register"), ("wf.disp.a", "dispatcher", "case.dispatch"),
                            ("wf.chief", "grid_chief", "case.accept"), ("wf.chief", "grid_chief", "case.handle"),
                            ("wf.insp", "inspector", "case.check"), ("wf.disp.a", "dispatcher", "case.close"),
                            ("wf.disp.a", "dispatcher", "case.evaluate")]
    assert case["workflow"] == {"revision": 8, "step_deadline": None, "pending_action": None,
                                "allowed_actions": ["reopen"]}


def test_rework_loop(desk: Desk) -> None:
    _to_dispatched(desk)
    desk.act("wf.chief", "handle", note="第一次处置")
    desk.act("wf.insp", "check", data={"result": "fail"})
    refused = desk.act("wf.disp.a", "close", status=409)
    assert refused["allowed"] == ["rework"] and refused["type"].endswith("/illegal-transition")
    desk.act("wf.disp.a", "rework", note="未清理干净")
    desk.act("wf.chief", "handle", note="第二次处置")
    desk.act("wf.insp", "check", data={"result": "pass"})
    desk.act("wf.disp.a", "close")
    assert [k for k, *_ in desk.trail()] == ["report", "register", "dispatch", "handle", "check", "rework", "handle",
                                              "check", "close"]
    assert [a for *_, a in desk.audit()] == ["case.register", "case.dispatch", "case.handle", "case.check",
                                             "case.rework", "case.handle", "case.check", "case.close"]


def test_return_escalates_to_the_town_and_is_dispatched_again(desk: Desk) -> None:
    _to_dispatched(desk)
    case = desk.act("wf.chief", "return", reason="需要执法力量")
    assert case["state"] == "dispatched" and case["workflow"]["pending_action"] == "return"
    desk.act("wf.chief", "approve", status=403)  # a grid chief approves nothing
    case = desk.act("wf.disp.b", "approve", note="同意回退")
    assert case["state"] == "registered" and case["owner"]["key"] == "TOWN" and case["owner"]["area"] == TOWN_CODE
    returned = case["history"][-1]
    assert returned["data"]["escalated_to"] == {"key": "TOWN", "area": TOWN_CODE}
    assert returned["data"]["requested_by"] == "wf.chief" and returned["data"]["approved_by"] == "wf.disp.b"
    desk.act("wf.chief", "handle", status=403)  # no longer the chief's unit's case
    case = desk.act("wf.disp.a", "dispatch")
    assert case["history"][-1]["data"] == {"to": "TOWN", "area": TOWN_CODE}
    desk.act("wf.town", "handle", note="街道已处置")
    assert desk.trail()[3:] == [("request", None, "wf.chief", "grid_chief"),
                                ("approve", None, "wf.disp.b", "dispatcher"),
                                ("return", "registered", "wf.disp.b", "dispatcher"),
                                ("dispatch", "dispatched", "wf.disp.a", "dispatcher"),
                                ("handle", "handled", "wf.town", "handler")]
    assert [a for *_, a in desk.audit()] == ["case.register", "case.dispatch", "case.return", "case.approve",
                                             "case.dispatch", "case.handle"]


def test_dispatch_to_another_unit_needs_a_reason_and_a_known_unit(desk: Desk) -> None:
    desk.act("wf.disp.a", "register")
    assert desk.act("wf.disp.a", "dispatch", target={"key": "LIGHTING"}, status=422)["parameter"] == "reason"
    assert desk.act("wf.disp.a", "dispatch", target={"key": "NOPE"}, reason="x", status=422)["parameter"] == \
        "target.key"
    case = desk.act("wf.disp.a", "dispatch", target={"key": "LIGHTING"}, reason="路灯问题")
    assert case["owner"]["key"] == "LIGHTING"
    assert desk.act("wf.lights", "accept")["state"] == "dispatched"


def test_extension_refused_then_approved(desk: Desk, reference) -> None:
    _to_dispatched(desk)
    before = desk.read()[0]["deadline"]
    assert desk.act("wf.chief", "extend", reason="r", data={"amount": 99, "unit": "working_days"},
                    status=422)["parameter"] == "data.amount"
    desk.act("wf.chief", "extend", reason="材料未到", data={"amount": 2, "unit": "working_days"})
    case = desk.act("wf.disp.a", "refuse", note="不同意")
    assert case["deadline"] == before and case["workflow"]["pending_action"] is None
    desk.act("wf.chief", "extend", reason="材料未到", data={"amount": 2, "unit": "working_days"})
    case = desk.act("wf.disp.a", "approve")
    extend = case["history"][-1]
    expected = reference.calendar.deadline(datetime.fromisoformat(before), 2, "working_days")
    assert datetime.fromisoformat(extend["data"]["deadline_after"]) == expected
    assert datetime.fromisoformat(case["deadline"]) == expected
    assert datetime.fromisoformat(case["workflow"]["step_deadline"]) == expected
    assert extend["data"]["amount"] == 2 and extend["data"]["reason"] == "材料未到"
    assert [k for k, *_ in desk.trail()][3:] == ["request", "refuse", "request", "approve", "extend"]
    assert [a for *_, a in desk.audit()][2:] == ["case.extend", "case.refuse", "case.extend", "case.approve"]


def test_suspension_needs_a_second_dispatcher_and_resumption_moves_the_deadline(desk: Desk, reference) -> None:
    _to_dispatched(desk)
    desk.act("wf.disp.a", "suspend", reason="需长期整改")
    refused = desk.act("wf.disp.a", "approve", status=403)
    assert "second person" in refused["detail"]
    case = desk.act("wf.disp.b", "approve")
    assert case["state"] == "suspended" and case["workflow"]["step_deadline"] is None
    assert desk.act("wf.chief", "handle", status=409)["allowed"] == []  # its unit, but not while suspended
    case = desk.act("wf.disp.a", "resume")
    resume = case["history"][-1]
    moved = reference.calendar.after_working_seconds(datetime.fromisoformat(resume["data"]["deadline_before"]),
                                                     resume["data"]["suspended_s"])
    assert abs((datetime.fromisoformat(case["deadline"]) - moved).total_seconds()) < 1
    assert case["state"] == "dispatched"
    assert [k for k, *_ in desk.trail()][3:] == ["request", "approve", "suspend", "resume"]
    assert [a for *_, a in desk.audit()][2:] == ["case.suspend", "case.approve", "case.resume"]


def test_void_with_approval(desk: Desk) -> None:
    desk.act("wf.disp.a", "void", status=422)  # needs a reason
    desk.act("wf.disp.a", "void", reason="核实不属实")
    desk.act("wf.disp.a", "register", status=200)  # the state changes first: the request lapses
    assert desk.read()[0]["workflow"]["pending_action"] is None
    assert desk.act("wf.disp.b", "approve", status=409)["allowed"] == ["void", "dispatch"]
    desk.act("wf.disp.a", "void", reason="核实不属实")
    case = desk.act("wf.disp.b", "approve")
    assert case["state"] == "voided" and case["workflow"]["allowed_actions"] == []
    assert desk.trail()[1:] == [("request", None, "wf.disp.a", "dispatcher"),
                                ("register", "registered", "wf.disp.a", "dispatcher"),
                                ("request", None, "wf.disp.a", "dispatcher"),
                                ("approve", None, "wf.disp.b", "dispatcher"),
                                ("void", "voided", "wf.disp.b", "dispatcher")]
    assert [a for *_, a in desk.audit()] == ["case.void", "case.register", "case.void", "case.approve"]


def test_reopen_starts_again_with_a_fresh_deadline(desk: Desk) -> None:
    _to_dispatched(desk)
    desk.act("wf.chief", "handle", note="done")
    desk.act("wf.insp", "check", data={"result": "pass"})
    desk.act("wf.disp.a", "close")
    case = desk.act("wf.disp.a", "reopen", note="群众回访不满意")
    assert case["state"] == "registered" and case["closed_at"] is None
    assert datetime.fromisoformat(case["history"][-1]["data"]["deadline_after"]) == \
        datetime.fromisoformat(case["deadline"])
    desk.act("wf.disp.a", "dispatch")
    desk.act("wf.chief", "handle", note="again")
    assert [a for *_, a in desk.audit()][-3:] == ["case.reopen", "case.dispatch", "case.handle"]


def test_refusals_in_order(desk: Desk) -> None:
    assert desk.act(None, "register", status=401)["status"] == 401
    assert desk.act("wf.disp.a", "teleport", status=404)["status"] == 404
    assert desk.act("wf.viewer", "register", status=403)["action"] == "register"
    assert desk.act("wf.chief", "register", status=403)["status"] == 403
    assert desk.act("wf.disp.a", "register", etag=None, status=428)["status"] == 428
    stale = desk.read()[1]
    desk.act("wf.disp.a", "register")
    assert desk.act("wf.disp.a", "dispatch", etag=stale, status=412)["etag"] == desk.read()[1]
    assert desk.act("wf.disp.a", "close", status=409)["allowed"] == ["void", "dispatch"]
    assert desk.act("wf.disp.a", "dispatch", data={"x": "\x00"}, status=422)["status"] == 422
    desk.act("wf.disp.a", "dispatch")
    assert desk.act("wf.chief.other", "handle", status=403)["status"] == 403  # outside its area: not readable
    assert desk.act("wf.lights", "handle", status=403)["status"] == 403  # not its unit's case
    assert desk.act("wf.insp", "check", status=409)["allowed"] == []
    assert [a for *_, a in desk.audit()] == ["case.register", "case.dispatch"]  # refusals leave no row


def test_get_case_answers_its_etag_and_allowed_actions(desk: Desk) -> None:
    case, tag = desk.read()
    assert tag == '"1"' and case["workflow"]["allowed_actions"] == ["verify", "register", "void"]
    case, _ = desk.read("wf.insp")
    assert case["workflow"]["allowed_actions"] == ["verify"]
    assert desk.act("wf.insp", "verify", data={"result": True})["workflow"]["allowed_actions"] == []


def test_cli_takes_an_action_as_an_account(desk: Desk, world_engine, capsys, monkeypatch) -> None:
    from api.cli import main

    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    assert main(["cases", "act", str(desk.id), "dispatch", "--as", "wf.disp.a"]) == 1  # reported: 409
    assert "allowed: verify, register, void" in capsys.readouterr().err
    assert main(["cases", "act", str(desk.id), "register", "--as", "wf.disp.a", "--note", "立案"]) == 0
    assert "registered (revision 2; events register)" in capsys.readouterr().out
    assert main(["cases", "act", str(desk.id), "dispatch", "--as", "wf.disp.a", "--if-match", "1"]) == 1  # stale
    assert main(["cases", "act", str(desk.id), "dispatch", "--as", "wf.disp.a", "--target", "LIGHTING",
                 "--reason", "路灯"]) == 0
    assert desk.read()[0]["owner"]["key"] == "LIGHTING"
    assert [a for *_, a in desk.audit()] == ["case.register", "case.dispatch"]


def test_open311_status_follows_the_workflow(desk: Desk) -> None:
    def request() -> dict:
        reply = desk.client.get(f"/open311/v2/requests/{desk.id}.json", headers=desk.headers("wf.disp.a"))
        assert reply.status_code == 200, reply.text
        return reply.json()[0]

    first = request()
    assert first["status"] == "open" and first["status_notes"] == "已受理，待核实立案"
    desk.act("wf.disp.a", "register")
    case = desk.act("wf.disp.a", "dispatch", target={"key": "LIGHTING"}, reason="路灯")
    dispatched = request()
    assert dispatched["status"] == "open" and dispatched["status_notes"] == "已派遣，处置中"
    assert dispatched["agency_responsible"] == case["owner"]["name"] != first["agency_responsible"]
    assert datetime.fromisoformat(dispatched["updated_datetime"]) == \
        datetime.fromisoformat(case["history"][-1]["at"]).replace(microsecond=0)  # GeoReport: whole seconds
    desk.act("wf.lights", "handle", note="已修复")
    desk.act("wf.insp", "check", data={"result": "pass"})
    desk.act("wf.disp.a", "close")
    assert (request()["status"], request()["status_notes"]) == ("closed", "已结案")
