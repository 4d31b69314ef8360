"""Who may see and do what, where: the role and scope rules of SPEC "Accounts and access", in one place.

Every account has one role and one scope. The scope is either

- ``*`` — the whole city (admins, and city-wide partner systems such as the 12345 hotline);
- an area code — a district (6 digits), town (9), community (12) or base grid (15), or a special grid code
  (``320506E0001``): the account sees and acts on cases whose base grid lies in that area (an ancestor's
  code is a prefix of the base grid's, SPEC "Grids"), or whose special grids include it;
- a department or owner key (``LIGHTING``) — for ``handler`` and ``owner`` accounts: the cases owned by that
  unit, and for owners the components they own.

The rules are enforced here, next to the queries they guard (``spatial.cases.intake``,
``spatial.cases.read``, ``spatial.cases.bulk``, ``spatial/store/sql/intake.sql``), not only in the routes, so
that a new route cannot forget them.
Refusals are ``ForbiddenError`` (403); nothing is stored when a write is refused.

| role       | scope      | reports cases | reads cases       | personal data | edits (OGC API Features Part 4)       |
|------------|------------|---------------|-------------------|---------------|---------------------------------------|
| admin      | ``*``      | anywhere      | all               | yes           | components, special and base grids    |
| dispatcher | area       | in its area   | in its area       | yes           | no                                    |
| inspector  | area       | in its area   | in its area       | no            | no                                    |
| grid_chief | area       | in its area   | in its area       | no            | no                                    |
| partner    | area or *  | in its area   | in its area       | no            | no                                    |
| planner    | area       | no            | in its area       | no            | base grids in its area; special grids |
|            |            |               |                   |               | of its district (scope = a district)  |
| viewer     | area       | no            | in its area       | no            | no                                    |
| handler    | department | no            | owned by its unit | no            | no                                    |
| owner      | owner key  | no            | owned by it       | no            | components it owns (before and after) |

An edit of a base grid is allowed only when the caller may edit every grid it changes: the edited one and
each neighbour whose shape moves with it (grow, split, merge; issue 23, finding 2) — so a planner scoped to
one base grid may rename it but not move a boundary it shares with a grid outside its scope.

Edits are checked twice: the OGC write path asks ``may_edit_collection`` and the ``check_edit_*`` rule of the
stored item before it looks at preconditions or the body (RFC 9110 §13.2.1), and the domain functions
(spatial/components/edits.py, spatial/grids/edits.py, spatial/grids/special_edits.py) ask the same rules
again, in the transaction of the edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, ColumnElement, String, and_, any_, cast, false, literal, or_, text, true
from sqlalchemy.dialects.postgresql import array

from spatial.access.principal import Principal
from spatial.codes import AREA_CODE, SPECIAL_CODE, district_of, prefix_range
from spatial.errors import ForbiddenError

REPORTERS = ("admin", "dispatcher", "inspector", "grid_chief", "partner")
KEY_ROLES = ("handler", "owner")
CITY_WIDE = ("admin", "partner")
# Bulk rows (issue 23, finding 4). Roles that import history may date a row up to HISTORY_DAYS back and name
# any source; every other reporter's rows are dated now (a clock skew allowed) and carry the source of the
# account: an inspector's (or grid chief's) rows are ``inspector``, a partner system relays the hotline and
# citizens' apps (``hotline``, the default, or ``public``).
HISTORY_ROLES = ("admin", "dispatcher")
HISTORY_DAYS = 30
CLOCK_SKEW = timedelta(minutes=5)
ROW_SOURCES: dict[str, tuple[str, ...]] = {"inspector": ("inspector",), "grid_chief": ("inspector",),
                                           "partner": ("hotline", "public")}
# Who may write to each editable collection at all; which items, the ``check_edit_*`` rules below.
EDITORS: dict[str, tuple[str, ...]] = {"components": ("admin", "owner"), "special-grids": ("admin", "planner"),
                                       "grids": ("admin", "planner")}


def is_area(scope: str) -> bool:
    """Whether a scope names an area (a grid code of any level or a special grid code)."""
    return bool(AREA_CODE.match(scope) or SPECIAL_CODE.match(scope))


def scope_problem(role: str, scope: str) -> str | None:
    """Why ``scope`` does not suit ``role`` (None when it does); checked when an account is made."""
    if scope == "*":
        return None if role in CITY_WIDE else f"only {' and '.join(CITY_WIDE)} accounts may have the whole city (*)"
    if role in KEY_ROLES:
        return None if not is_area(scope) else f"a {role} account is scoped to a department or owner key, not an area"
    if role == "admin":
        return "admin accounts have the whole city (*) as scope"
    return None if is_area(scope) else f"a {role} account is scoped to an area code, not {scope!r}"


def covers(scope: str, grid_code: str | None, special_codes: Iterable[str] | None = ()) -> bool:
    """Whether an area scope covers a place with this base grid and these special grids."""
    if scope == "*":
        return True
    if grid_code is None:
        return False
    if SPECIAL_CODE.match(scope):
        return scope in (special_codes or ())
    return grid_code.startswith(scope)


def report_area(principal: Principal | None) -> str | None:
    """The area a caller may report in (None: anywhere); ForbiddenError for roles that do not report.
    ``principal`` None is the public Open311 channel, which reports anywhere (rate-limited)."""
    if principal is None:
        return None
    if principal.role not in REPORTERS:
        raise ForbiddenError(f"a {principal.role} account cannot report cases (needs {', '.join(REPORTERS)})")
    return None if principal.scope == "*" else principal.scope


def check_report(principal: Principal | None, grid_code: str, special_codes: Iterable[str] | None) -> None:
    """ForbiddenError unless the caller may report at a place in this grid."""
    area = report_area(principal)
    if area is not None and not covers(area, grid_code, special_codes):
        raise ForbiddenError(f"this location (grid {grid_code}) lies outside your area {area}",
                             grid=grid_code, scope=area)


def may_read(principal: Principal, *, grid_code: str, special_codes: Iterable[str] | None,
             owner_key: str | None, assist_keys: Iterable[str] | None = ()) -> bool:
    """Whether the caller may read a case with this place, owner and assisting units (协办, issue 17)."""
    if principal.scope == "*":
        return True
    if principal.role in KEY_ROLES:
        return owner_key == principal.scope or principal.scope in (assist_keys or ())
    return covers(principal.scope, grid_code, special_codes)


def check_read(principal: Principal, row: dict) -> None:
    """ForbiddenError unless the caller may read this case (a ``case_get`` row)."""
    if not may_read(principal, grid_code=row["grid_code"], special_codes=row["special_grid_codes"],
                    owner_key=row["owner_key"], assist_keys=row.get("assist_keys")):
        raise ForbiddenError(f"case {row['id']} lies outside your scope {principal.scope}", case_id=row["id"])


def case_clause(principal: Principal, *, grid_code, special_codes, owner_key, assist_keys=None) -> ColumnElement[bool]:
    """A SQL condition on case columns that holds exactly for the cases the caller may read (``assist_keys``:
    the case's assisting units, whose handlers read it too; None where a reader does not list them)."""
    scope = principal.scope
    if scope == "*":
        return true()
    if principal.role in KEY_ROLES:
        own = owner_key == scope
        if assist_keys is None:
            return own
        # The form ix_case_assist_keys serves (GIN, partial on the predicate written out here).
        assisted = and_(assist_keys.op("<>")(text("'{}'")), assist_keys.op("@>")(cast(array([scope]), ARRAY(String))))
        return or_(own, assisted)
    if SPECIAL_CODE.match(scope):
        return literal(scope) == any_(special_codes)
    # A prefix range the grid-code index can use (codes are fixed-width digits).
    return grid_code.between(*prefix_range(scope))


def case_filter(principal: Principal | None) -> tuple[str, str] | None:
    """The caller's case scope as (kind, value) for hand-written SQL (tiles/layers.py): ``("prefix", area)``,
    ``("special", code)`` or ``("owner", key)``; None for the whole city (or the system itself)."""
    if principal is None or principal.scope == "*":
        return None
    if principal.role in KEY_ROLES:
        return ("owner", principal.scope)
    if SPECIAL_CODE.match(principal.scope):
        return ("special", principal.scope)
    return ("prefix", principal.scope)


def may_edit_collection(principal: Principal, collection: str) -> bool:
    """Whether the caller's role may write to ``collection`` at all (``EDITORS``; read-only ones: nobody)."""
    return principal.role in EDITORS.get(collection, ())


def check_edit_collection(principal: Principal, collection: str) -> None:
    """ForbiddenError unless the caller's role may write to ``collection``."""
    if not may_edit_collection(principal, collection):
        needs = " or ".join(EDITORS.get(collection, ())) or "nobody"
        raise ForbiddenError(f"a {principal.role} account may not edit {collection} (needs {needs})")


def _check_edit(principal: Principal, role: str, allowed: bool, what: str) -> None:
    """Admins edit anything; ``role`` edits where ``allowed``; anyone else is refused editing ``what``."""
    if principal.role == "admin" or (principal.role == role and allowed):
        return
    raise ForbiddenError(f"{principal.login} ({principal.role}, {principal.scope}) may not edit {what}")


def check_edit_component(principal: Principal, owner_key: str) -> None:
    """ForbiddenError unless the caller may edit a component owned by ``owner_key`` (admins; its owner)."""
    _check_edit(principal, "owner", principal.scope == owner_key, f"components owned by {owner_key}")


def registry_owner(principal: Principal, owner: str | None) -> str | None:
    """The owner filter of a registry search (``GET /api/v1/components``): an owner account lists only its own
    components (no owner named: its key; another owner named: ForbiddenError); every other account any owner's.
    One component stays readable by code to any account (cases, /ogc and the tiles name it), its history not."""
    if principal.role != "owner":
        return owner
    if owner in (None, "", principal.scope):
        return principal.scope
    raise ForbiddenError(f"{principal.login} ({principal.role}, {principal.scope}) lists only its own components,"
                         f" not {owner}'s")


def check_exclusive_import(principal: Principal) -> None:
    """ForbiddenError unless the caller is an admin: only an admin may import a survey in a maintenance window
    (``--exclusive``: the registry table locked against every reader until the import commits)."""
    if principal.role != "admin":
        raise ForbiddenError(f"{principal.login} ({principal.role}) may not lock the registry for an import"
                             " (--exclusive needs an admin)")


def check_edit_base_grid(principal: Principal, code: str, *, changed_by: str | None = None) -> None:
    """ForbiddenError unless the caller may edit the base grid ``code`` (admins; planners whose area covers it).
    ``changed_by``: the grid whose edit would change ``code`` (a neighbour that grows, shrinks or absorbs it)."""
    what = f"base grid {code}" if changed_by is None else f"base grid {code}, which editing {changed_by} would change"
    _check_edit(principal, "planner", covers(principal.scope, code), what)


def check_edit_grid(principal: Principal, code: str) -> None:
    """ForbiddenError unless the caller may plan grid ``code`` of any level (issue 19): admins anywhere,
    planners whose area covers it (a district's planner plans its towns, communities and base grids). Every
    grid a plan changes is asked, neighbours included, as for base grid edits."""
    _check_edit(principal, "planner", covers(principal.scope, code), f"grid {code}")


def check_edit_special_grid(principal: Principal, code: str) -> None:
    """ForbiddenError unless the caller may edit the special grid ``code`` (admins; planners of its district)."""
    _check_edit(principal, "planner", principal.scope == district_of(code),
                f"special grids of district {district_of(code)}")


def row_source(principal: Principal | None) -> str:
    """The source of a bulk row that names none: the account's own (``ROW_SOURCES``), else ``hotline``."""
    allowed = ROW_SOURCES.get(principal.role) if principal is not None else None
    return allowed[0] if allowed else "hotline"


def own_source(principal: Principal | None, given: str | None) -> str:
    """The source of a single report: ``given`` if the account may name it (``check_row_source``), the
    account's own when it names none (``ROW_SOURCES``; ``inspector`` for accounts that may name any)."""
    if given is None:
        allowed = ROW_SOURCES.get(principal.role) if principal is not None else None
        return allowed[0] if allowed else "inspector"
    check_row_source(principal, given)
    return given


def check_row_source(principal: Principal | None, source: str) -> None:
    """ForbiddenError unless the caller's bulk rows may carry ``source`` (``ROW_SOURCES``; history importers
    and the system itself name any)."""
    if principal is None:
        return
    allowed = ROW_SOURCES.get(principal.role)
    if allowed is not None and source not in allowed:
        raise ForbiddenError(f"source: {principal.role} accounts report as {' or '.join(map(repr, allowed))},"
                             f" not {source!r}")


def check_report_time(principal: Principal | None, reported_at: datetime, now: datetime) -> None:
    """ForbiddenError unless the caller may date a report at ``reported_at``: history importers
    (``HISTORY_ROLES``) up to ``HISTORY_DAYS`` back, other accounts within ``CLOCK_SKEW`` of ``now``; the system
    itself (``gridlink import cases``, principal None) at any past time. The future is refused by the caller
    (spatial.cases.bulk) for everyone."""
    if principal is None:
        return
    if principal.role in HISTORY_ROLES:
        if reported_at < now - timedelta(days=HISTORY_DAYS):
            raise ForbiddenError(f"reported_at: a report may be dated at most {HISTORY_DAYS} days back")
    elif reported_at < now - CLOCK_SKEW:
        raise ForbiddenError(f"reported_at: only {' and '.join(HISTORY_ROLES)} accounts may date a report in the"
                             f" past ({principal.role} accounts' rows are dated when they arrive)")


# -- Issue 17 (the workflow): who acts for the unit a case is dispatched to. Which role may take which
# action is the transition table's (spatial/cases/workflow.py); the unit is the case's owner (owner_key,
# owner_area_code), which dispatch sets.

GRID_CHIEF_UNIT = "GRID_CHIEF"  # spatial.cases.assignment.owner.GRID_CHIEF (a lower room may not import it)


def acts_for_unit(principal: Principal, owner_key: str, owner_area: str | None,
                  special_codes: Iterable[str] | None = ()) -> bool:
    """Whether the caller acts for the unit that owns a case: a handler or owner account of that key, a grid
    chief whose area covers the grid of a grid-chief case (admins act for every unit)."""
    if principal.role == "admin":
        return True
    if principal.role in KEY_ROLES:
        return principal.scope == owner_key
    if principal.role == "grid_chief":
        return owner_key == GRID_CHIEF_UNIT and covers(principal.scope, owner_area, special_codes)
    return False


def unit_clause(principal: Principal, *, owner_key, owner_area, special_codes) -> ColumnElement[bool]:
    """A SQL condition on case columns that holds exactly where ``acts_for_unit`` does (the inbox, issue 17)."""
    if principal.role == "admin":
        return true()
    if principal.role in KEY_ROLES:
        return owner_key == principal.scope
    if principal.role != "grid_chief":
        return false()
    if SPECIAL_CODE.match(principal.scope):
        area = literal(principal.scope) == any_(special_codes)
    else:
        area = owner_area.between(*prefix_range(principal.scope))
    return and_(owner_key == GRID_CHIEF_UNIT, area)


# -- Issue 20 (photos with a case; what the map's "what is here" shows).
# Who may add a photo to a case it reads: the roles that act on cases (report, verify, check, handle). Viewers
# and planners read cases but add nothing to them; handlers and owners add to the cases their unit owns or
# assists (``may_read`` already limits them to those). Photos are read with the case's read rule.
PHOTO_ROLES = ("admin", "dispatcher", "inspector", "grid_chief", "partner", "handler", "owner")
# Who sees the telephone numbers of a grid's team (网格长, 巡查员 …): staff who coordinate work on the ground —
# admins anywhere; dispatchers, grid chiefs and inspectors for the grids in their area. Every other account
# sees the team's names and roles, not their numbers (SECURITY.md "Staff telephone numbers").
TEAM_PHONE_ROLES = ("admin", "dispatcher", "grid_chief", "inspector")


def check_add_photo(principal: Principal, row: dict) -> None:
    """ForbiddenError unless the caller may add a photo to this case (a ``case_get`` row): it reads the case
    (``check_read``) and its role acts on cases (``PHOTO_ROLES``)."""
    check_read(principal, row)
    if principal.role not in PHOTO_ROLES:
        raise ForbiddenError(f"a {principal.role} account cannot add photos to cases (needs {', '.join(PHOTO_ROLES)})")


def sees_team_phones(principal: Principal, grid_code: str, special_codes: Iterable[str] | None = ()) -> bool:
    """Whether the caller sees the telephone numbers of the team of the base grid ``grid_code`` (or of a special
    grid among ``special_codes``): ``TEAM_PHONE_ROLES`` whose area covers it."""
    return principal.role in TEAM_PHONE_ROLES and covers(principal.scope, grid_code, special_codes)
