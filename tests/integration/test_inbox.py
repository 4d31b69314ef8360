"""The inbox (issue 17 item 4) over HTTP on the world: for each role and scope exactly the cases it must act on
now, in due order, in keyset pages, with counts by state; the SQL inbox agrees with the transition table's
Python form on every case for every account; the page query walks the open-due index."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit
from spatial.cases.inbox import DUTIES, InboxQuery, duties_now, inbox_clause, page_query
from spatial.cases.workflow import BY_ACTION
from spatial.store.models import Case
from spatial.store.partitions import open_span
from tests.integration.test_workflow import ACCOUNTS, Desk, tokens  # noqa: F401 (the accounts' fixture)
from tests.plans import is_case_month, root_indexes
from tests.world import DISTRICT


class Spot(Desk):
    """A ``Desk`` whose case lies ``n`` × 220 m south of the others' (apart enough not to be a duplicate)."""

    def __init__(self, client, tokens, engine, n: int) -> None:  # noqa: F811
        self.client, self.tokens, self.engine = client, tokens, engine
        with engine.connect() as conn:
            self.audit_from = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
        reply = client.post("/api/v1/cases", json={"category": "E010101", "source": "inspector", "location": {
            "type": "Point", "coordinates": [120.06, 31.19 - 0.002 * n]}})
        assert reply.status_code == 201, reply.text
        self.id = reply.json()["id"]


INBOX_ACCOUNTS = {**ACCOUNTS, "wf.insp.north": ("inspector", f"{DISTRICT}002")}


@pytest.fixture(scope="module")
def desks(world_client, tokens, world_engine) -> dict[str, Spot]:  # noqa: F811
    """Nine cases of grid 001001002 walked to every place where someone must act (and one where nobody must)."""
    with world_engine.begin() as conn:
        conn.execute(text('TRUNCATE case_photo, case_unit, case_event, "case" RESTART IDENTITY CASCADE'))
    d = {name: Spot(world_client, tokens, world_engine, n) for n, name in enumerate(
         ("reported", "registered", "chief", "lights", "handled", "failed", "extend", "suspend", "closed"))}
    for name, desk in d.items():
        if name == "reported":
            continue
        desk.act("wf.disp.a", "register")
        if name == "registered":
            continue
        if name == "lights":
            desk.act("wf.disp.a", "dispatch", target={"key": "LIGHTING"}, reason="路灯")
            continue
        desk.act("wf.disp.a", "dispatch")
        if name in ("handled", "failed", "closed"):
            desk.act("wf.chief", "handle", note="已处置")
        if name in ("failed", "closed"):
            desk.act("wf.insp", "check", data={"result": "fail" if name == "failed" else "pass"})
        if name == "closed":
            desk.act("wf.disp.a", "close")
        if name == "extend":
            desk.act("wf.chief", "extend", reason="材料未到", data={"amount": 1, "unit": "working_days"})
        if name == "suspend":
            desk.act("wf.disp.a", "suspend", reason="长期整改")
    return d


EXPECTED = {  # who must act on which case now, and by which duties
    "wf.disp.a": {"reported": ["verify", "register"], "registered": ["dispatch"], "handled": ["check"],
                  "failed": ["rework"], "extend": ["approve", "refuse"]},
    "wf.disp.b": {"reported": ["verify", "register"], "registered": ["dispatch"], "handled": ["check"],
                  "failed": ["rework"], "extend": ["approve", "refuse"], "suspend": ["approve", "refuse"]},
    "wf.insp": {"reported": ["verify"], "handled": ["check"]},
    "wf.insp.north": {},  # another town: none of these cases is in its scope
    "wf.chief": {"chief": ["accept", "handle"], "extend": ["accept", "handle"], "suspend": ["accept", "handle"]},
    "wf.chief.other": {},  # the grid next door
    "wf.lights": {"lights": ["accept", "handle"]},
    "wf.town": {}, "wf.viewer": {},
}


def _get(client, tokens, login, **params):  # noqa: F811
    reply = client.get("/api/v1/inbox", params=params, headers={"Authorization": f"Bearer {tokens[login]}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def extra_token(world_engine, tokens) -> dict[str, str]:  # noqa: F811
    """``tokens`` and an inspector of the district's second town."""
    from spatial.access.accounts import add_user, create_token
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE account_id IN"
                          " (SELECT id FROM account WHERE login = 'wf.insp.north')"))
        conn.execute(text("DELETE FROM account WHERE login = 'wf.insp.north'"))
        add_user(conn, "wf.insp.north", role="inspector", scope=f"{DISTRICT}002", password="a long enough password")
        return {**tokens, "wf.insp.north": create_token(conn, "wf.insp.north")[0]}


def test_each_role_sees_what_it_must_act_on(world_client, desks, extra_token) -> None:
    ids = {desk.id: name for name, desk in desks.items()}
    for login, expected in EXPECTED.items():
        page = _get(world_client, extra_token, login)
        got = {ids[c["id"]]: c["duties"] for c in page["cases"]}
        assert got == expected, login
        assert page["next"] is None and page["total"] == len(expected)
        assert page["counts"] == _count_states(page["cases"]), login
        dues = [c["due"] for c in page["cases"]]
        assert dues == sorted(dues, key=lambda d: (d is None, d)), login  # oldest due first
        for case in page["cases"]:
            assert set(case["duties"]) <= set(case["workflow"]["allowed_actions"])


def _count_states(cases: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case in cases:
        counts[case["state"]] = counts.get(case["state"], 0) + 1
    return counts


def test_due_order_keyset_pages_and_the_state_filter(world_client, desks, extra_token, world_engine) -> None:
    # Make the due times differ from the order the cases were made in: the registered case is due first.
    with world_engine.begin() as conn:
        conn.execute(text('UPDATE "case" SET step_deadline = step_deadline - interval \'3 days\' WHERE id = :id'),
                     {"id": desks["registered"].id})
    whole = _get(world_client, extra_token, "wf.disp.b")
    assert whole["cases"][0]["id"] == desks["registered"].id
    seen, after = [], None
    while True:
        page = _get(world_client, extra_token, "wf.disp.b", limit=2, **({"after": after} if after else {}))
        assert len(page["cases"]) <= 2 and page["counts"] == whole["counts"]
        seen += [c["id"] for c in page["cases"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [c["id"] for c in whole["cases"]]
    handled = _get(world_client, extra_token, "wf.disp.b", state="handled")
    assert {c["id"] for c in handled["cases"]} == {desks["handled"].id, desks["failed"].id}
    assert handled["counts"] == whole["counts"]  # the badges count the whole inbox


def test_refusals(world_client, desks, extra_token) -> None:
    assert world_client.get("/api/v1/inbox", headers={"Authorization": ""}).status_code == 401
    auth = {"Authorization": f"Bearer {extra_token['wf.disp.a']}"}
    for params, parameter in (({"after": "x"}, "after"), ({"after": "1.2.3"}, "after"), ({"state": "closed"}, "state"),
                              ({"limit": 0}, "limit"), ({"limit": 201}, "limit")):
        reply = world_client.get("/api/v1/inbox", params=params, headers=auth)
        assert reply.status_code in (400, 422), (params, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert parameter in reply.text


def test_sql_and_table_agree_on_every_case_for_every_account(desks, world_engine) -> None:
    from spatial.cases.actions import load_trail

    with world_engine.connect() as conn:
        cases = conn.execute(text('SELECT id, owner_key, owner_area_code, special_grid_codes, grid_code FROM "case"'))
        rows = [dict(r) for r in cases.mappings()]
        for login, (role, scope) in INBOX_ACCOUNTS.items():
            by = Principal(account_id=0, login=login, role=role, scope=scope)
            members = set(conn.execute(Case.__table__.select().with_only_columns(Case.id)
                                       .where(inbox_clause(by, open_span(conn)))).scalars())
            for row in rows:
                trail = load_trail(conn, row["id"])[1]
                unit = acts_for_unit(by, row["owner_key"], row["owner_area_code"], row["special_grid_codes"])
                keyed = role in ("handler", "owner")
                readable = scope == row["owner_key"] if keyed else row["grid_code"].startswith(scope)
                python = readable and bool(duties_now(trail, by, unit))
                assert (row["id"] in members) == python, (login, row["id"])
    assert set(DUTIES) <= set(BY_ACTION)


def _case_indexes(conn, by: Principal) -> set[str]:
    """The indexes through which the page query of ``by`` reaches the ``case`` table (no sequential scan
    allowed, as tests/integration/test_query_plans.py does on data this small)."""
    compiled = page_query(by, InboxQuery(limit=50), open_span(conn)).compile(conn,
                                                                         compile_kwargs={"literal_binds": True})
    found: set[str] = set()

    def walk(node: dict) -> None:
        if is_case_month(node.get("Relation Name", "")):
            assert node["Node Type"] != "Seq Scan", node
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    walk((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    # the months of "case" (migration 0031) by the indexes of the partitioned table
    return {n for n in root_indexes(conn, found) if n.startswith("ix_case_") and not n.startswith("ix_case_event")}


def test_the_page_query_walks_an_index(desks, world_engine) -> None:
    with world_engine.connect() as conn, conn.begin():
        city = Principal(account_id=0, login="admin", role="admin", scope="*")
        # On data this small the planner may prefer the state index and a sort, or the report time's (the page
        # names the months of the open cases since migration 0036: a range of reported_at that is the whole of
        # this world's one month); on the full demo the city's page walks ix_case_open_due (README "Inbox"
        # gives the plan measured there; bench.partitions --part pruning, the open reads).
        assert _case_indexes(conn, city) & {"ix_case_open_due", "ix_case_state", "ix_case_reported_at"}
        district = Principal(account_id=0, login="wf.disp.a", role="dispatcher", scope=DISTRICT)
        assert _case_indexes(conn, district) & {"ix_case_open_due", "ix_case_state", "ix_case_grid_code",
                                                "ix_case_reported_at"}
