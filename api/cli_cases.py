"""``gridlink cases act ID ACTION --as LOGIN``: a workflow action from the command line (issue 17).

The action is taken as the named account (its role and scope decide, as over HTTP: spatial/cases/actions.py),
in one transaction with its audit row (client ``cli:<os user>``). ``--if-match REV`` names the revision the
operator read; without it the case's current revision is used (the operator acts on what is stored now).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    """Add ``cases act`` to the command line's subparsers."""
    cases = sub.add_parser("cases", help="case workflow actions")
    cases.add_argument("what", choices=("act",))
    cases.add_argument("case_id", type=int)
    cases.add_argument("action")
    cases.add_argument("--as", dest="login", required=True, help="the account acting (its role and scope apply)")
    cases.add_argument("--note", default=None)
    cases.add_argument("--reason", default=None)
    cases.add_argument("--data", default=None, help="a JSON object, e.g. '{\"result\": \"pass\"}'")
    cases.add_argument("--target", default=None, help="dispatch: KEY or KEY:AREA (another unit needs --reason)")
    cases.add_argument("--assist", action="append", default=None, metavar="KEY[:AREA]",
                       help="dispatch: an assisting unit (协办), once per unit")
    cases.add_argument("--if-match", type=int, default=None, help="the revision you read (default: the current one)")
    cases.set_defaults(func=cmd_cases)


def _unit(value: str) -> dict[str, str | None]:
    """``KEY`` or ``KEY:AREA`` as a unit of an action's body."""
    key, _, area = value.partition(":")
    return {"key": key, "area": area or None}


def cmd_cases(args: argparse.Namespace) -> int:
    """Take one workflow action; print the case's new state and revision, or why it was refused."""
    import getpass

    from pydantic import ValidationError
    from sqlalchemy import create_engine

    from api.cli import _url
    from spatial.access.accounts import find_login
    from spatial.cases.actions import ActionInput, act
    from spatial.cases.rows import one_case
    from spatial.errors import GridlinkError
    from spatial.reference.cache import ReferenceCache

    try:
        key, _, area = (args.target or "").partition(":")
        body = ActionInput.model_validate({
            "note": args.note, "reason": args.reason, "data": json.loads(args.data) if args.data else {},
            "target": {"key": key, "area": area or None} if key else None,
            "assist": [_unit(unit) for unit in args.assist] if args.assist else None})
    except (ValueError, ValidationError) as exc:
        print(f"gridlink: the action's options are not valid: {exc}", file=sys.stderr)
        return 2
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            stored = find_login(conn, args.login)
            if stored is None:
                print(f"gridlink: no active account {args.login!r}", file=sys.stderr)
                return 2
            revision = args.if_match
            if revision is None:
                current = one_case(conn, 'SELECT revision FROM "case" WHERE id = :id __MONTH__', args.case_id)
                revision = current["revision"] if current is not None else None
            outcome = act(conn, ReferenceCache.load(conn), args.case_id, args.action, body, by=stored.principal,
                          expected_revision=revision, client=f"cli:{getpass.getuser()}")
    except GridlinkError as exc:
        allowed = exc.extra.get("allowed")
        listed = f" (allowed: {', '.join(map(str, allowed))})" if isinstance(allowed, list) and allowed else ""
        print(f"gridlink: {exc.status} {exc.detail}{listed}",
              file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"case {outcome.case_id}: {outcome.state} (revision {outcome.revision}; events "
          f"{', '.join(e['kind'] for e in outcome.events)})")
    return 0
