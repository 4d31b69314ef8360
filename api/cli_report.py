"""``gridlink report town CODE --month YYYY-MM``: a town's printable monthly report written to a file (issue 21).

The same page as ``GET /api/v1/kpi/report`` (spatial/cases/kpi_report.py, web/report.py). ``--as LOGIN`` reads
as that account (its role and scope apply, as over HTTP); without it the report is the whole town's, as the
system sees it. The page loads Leaflet and its style sheets from ``/static``: open it through a running
``gridlink serve`` (``--base-url``, the files' origin, is written into the page), or print it from the server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SYSTEM = "gridlink-cli"


def add_parser(sub) -> None:
    """Add ``report town`` to the command line's subparsers."""
    report = sub.add_parser("report", help="printable reports (a town's monthly evaluation)")
    report.add_argument("what", choices=("town",))
    report.add_argument("code", help="the town's 9-digit code")
    report.add_argument("--month", required=True, help="YYYY-MM (Suzhou time)")
    report.add_argument("--out", type=Path, default=None, help="the HTML file (default: report-CODE-MONTH.html)")
    report.add_argument("--as", dest="login", default=None, help="read as this account (its scope applies)")
    report.add_argument("--base-url", default="", help="where gridlink's /static is served, e.g. http://host:8000")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; print where, or why it was refused (exit 1) or the account is unknown (exit 2)."""
    from sqlalchemy import create_engine

    from api.cli import _url
    from spatial.access.accounts import find_login
    from spatial.access.principal import Principal
    from spatial.cases.kpi_report import parse_month, town_report
    from spatial.errors import GridlinkError
    from web.report import render_town_report

    engine = create_engine(_url())
    try:
        with engine.connect() as conn:
            principal = Principal(0, SYSTEM, "admin", "*")
            if args.login:
                stored = find_login(conn, args.login)
                if stored is None:
                    print(f"gridlink: no active account {args.login!r}", file=sys.stderr)
                    return 2
                principal = stored.principal
            page = render_town_report(town_report(conn, args.code, parse_month(args.month), by=principal))
    except GridlinkError as exc:
        print(f"gridlink: {exc.status} {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.base_url:
        page = page.replace('"/static/', f'"{args.base_url.rstrip("/")}/static/')
    out = args.out or Path(f"report-{args.code}-{args.month}.html")
    out.write_text(page, encoding="utf-8")
    print(f"report of town {args.code} for {args.month} written to {out}")
    return 0
