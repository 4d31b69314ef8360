"""The ``gridlink`` command: database, migrations, demo, server.

    gridlink db start|stop|status|url   the embedded PostgreSQL + PostGIS cluster under .gridlink/
    gridlink migrate                    upgrade the schema to the newest revision
    gridlink demo [--small] [--seed N] [--force]
    gridlink import reference [--departments F] [--component-classes F] [--event-categories F] ...
    gridlink import cases FILE [--all-or-nothing] [--report OUT.json]
    gridlink import components FILE --owner KEY [--mapping M] [--crs EPSG] [--encoding E] [--dry-run]
                                    [--all-or-nothing] [--rejects OUT] [--retire-missing] [--report OUT.json]
    gridlink export components OUT [--format gpkg|geojson|csv|fgb|shp] [--owner KEY] [--class C] [--status S]
                                   [--area CODE] [--changed-since TIME]
    gridlink serve [--host H] [--port P]
    gridlink user add LOGIN --role ROLE --scope SCOPE [--name N]   (password on standard input)
    gridlink user disable|enable LOGIN  disabling revokes the account's tokens and stops its logins
    gridlink user password LOGIN        reset the password (standard input); revokes the account's tokens
    gridlink token create LOGIN [--label L] [--days N (1-366) | --no-expiry]
    gridlink token revoke TOKEN
    gridlink token revoke-all LOGIN     sign an account out everywhere
    gridlink backup [FILE]              pg_dump (custom format); default .gridlink/backups/<time>.dump
    gridlink restore FILE [--database NAME] [--replace]
    gridlink up [--small]               all of the above, then serve the demo map

``GRIDLINK_DATABASE_URL`` points every command at an existing server instead of the embedded cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from spatial.settings import DatabaseSettings
from spatial.store.cluster import Cluster, ClusterError


def _err(message: str) -> None:
    print(f"gridlink: {message}", file=sys.stderr)


def _settings() -> DatabaseSettings:
    return DatabaseSettings()


def cmd_db(args: argparse.Namespace) -> int:
    """Start, stop or describe the embedded cluster."""
    settings = _settings()
    if settings.url is not None and args.action != "url":
        _err("GRIDLINK_DATABASE_URL is set: the embedded cluster is not used")
        return 2
    cluster = Cluster(settings.home)
    if args.action == "start":
        cluster.ensure_database(settings.name)
    elif args.action == "stop":
        cluster.stop()
        print("embedded PostgreSQL stopped")
    elif args.action == "status":
        state = cluster.state()
        running = cluster.running()
        print(f"data folder: {cluster.pgdata}")
        print(f"state: {'running' if running else 'stopped' if state else 'not created'}")
        if state:
            print(f"port: 127.0.0.1:{state.port}")
        return 0 if running else 3
    elif args.action == "url":
        from spatial.store.db import database_url

        print(database_url(settings))
    return 0


def _url() -> str:
    from spatial.store.db import database_url

    return database_url(_settings())


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Upgrade the schema to head."""
    from alembic import command

    from migrations import alembic_config

    command.upgrade(alembic_config(_url()), "head")
    print("schema is at the newest revision")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the Suzhou demo."""
    from sqlalchemy import create_engine

    from spatial.demo.build import DemoError, build_demo

    cmd_migrate(args)
    engine = create_engine(_url())
    started = time.perf_counter()
    try:
        report = build_demo(engine, seed=args.seed, small=args.small, force=args.force)
    except DemoError as exc:
        _err(str(exc))
        return 2
    finally:
        engine.dispose()
    if report.skipped:
        print("demo already built with these settings: nothing to do (use --force to rebuild)")
        return 0
    print(f"repairs of the district boundaries ({len(report.repairs)}):")
    for repair in report.repairs:
        print(f"  - {repair.subject}: {repair.problem} → {repair.action}")
    print("built: " + ", ".join(f"{k}={v:,}" for k, v in report.counts.items()))
    print("seconds: " + ", ".join(f"{k}={v}" for k, v in report.seconds.items()))
    print(f"demo built in {time.perf_counter() - started:.0f} s")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Load reference tables, or a batch of case reports, from files."""
    if args.what == "cases":
        return _import_cases(args)
    if args.what == "components":
        return _import_components(args)
    return _import_reference(args)


def _import_cases(args: argparse.Namespace) -> int:
    """Assign and store a GeoJSON or CSV batch of reports in one transaction; print the report."""
    import json

    from sqlalchemy import create_engine

    from spatial.cases.bulk import intake, start_reading
    from spatial.cases.bulk_files import parse_csv, parse_geojson
    from spatial.errors import GridlinkError
    from spatial.reference.cache import ReferenceCache

    if args.file is None:
        _err("import cases needs a FILE (.geojson, .json or .csv)")
        return 2
    body = args.file.read_text(encoding="utf-8-sig")
    engine = create_engine(_url())
    try:
        usable = start_reading(engine, len(body))
        rows, refused = parse_csv(body) if args.file.suffix.lower() == ".csv" else parse_geojson(body)
        with engine.begin() as conn:
            report = intake(conn, ReferenceCache.load(conn), rows, parse_refused=refused, actor="cli:import",
                            all_or_nothing=args.all_or_nothing, usable=usable)
    except GridlinkError as exc:
        _err(f"nothing was imported: {exc.detail}")
        return 2
    finally:
        engine.dispose()
    print(f"{report.received:,} rows: {report.created:,} created, {report.duplicates:,} linked as duplicates, "
          f"{report.refused:,} refused" + ("" if report.stored else " — nothing stored (--all-or-nothing)"))
    for result in [r for r in report.results if r.status == "refused"][:20]:
        print(f"  row {result.row}: {result.reason}", file=sys.stderr)
    if args.report:
        args.report.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    return 0 if report.refused == 0 else 1


def _import_components(args: argparse.Namespace) -> int:
    """Import an owner's survey into the component registry with a progress bar; print the report."""
    import json

    from sqlalchemy import create_engine
    from tqdm import tqdm

    from spatial.access.principal import Principal
    from spatial.components.importer import ImportOptions, import_survey
    from spatial.components.survey import read_mapping
    from spatial.errors import GridlinkError

    if args.file is None or not args.owner:
        _err("import components needs a FILE and --owner KEY")
        return 2
    actor = _cli_actor()
    engine = create_engine(_url())
    try:
        options = ImportOptions(owner=args.owner, mapping=read_mapping(args.mapping) if args.mapping else None,
                                crs=args.crs, encoding=args.encoding, layer=args.layer, dry_run=args.dry_run,
                                all_or_nothing=args.all_or_nothing, retire_missing=args.retire_missing,
                                rejects=args.rejects)
        with tqdm(unit=" rows", desc=args.file.name, disable=args.quiet) as bar:
            def progress(rows: int, total: int) -> None:
                bar.total = total if total > 0 else None
                bar.update(rows)

            report = import_survey(engine, Principal(0, actor.who, "admin", "*"), actor, args.file, options,
                                   progress)
    except GridlinkError as exc:
        _err(f"nothing was imported: {exc.detail}")
        return 2
    finally:
        engine.dispose()
    _print_import(report)
    if args.report:
        args.report.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1, default=str),
                               encoding="utf-8")
    return 0 if report.refused == 0 else 1


def _print_import(report) -> None:
    """The final report of a survey import."""
    fields = ", ".join(f"{k} {v:,}" for k, v in report.changed_fields.items())
    print(f"{report.file} ({report.crs}) for {report.owner}: {report.rows:,} rows — {report.new:,} new"
          f" ({report.allocated:,} codes allocated), {report.changed:,} changed" + (f" ({fields})" if fields else "")
          + f", {report.unchanged:,} unchanged, {report.refused:,} refused; {report.missing:,} registered"
          f" component(s) missing from the survey" + (f", {report.retired:,} retired" if report.retired else ""))
    if report.dry_run:
        print("dry run: nothing was stored")
    elif not report.stored:
        print("nothing was stored (--all-or-nothing and refused rows)")
    for refusal in report.refusals:
        print(f"  row {refusal['row']}: {refusal['reason']}", file=sys.stderr)


def _import_reference(args: argparse.Namespace) -> int:
    """Load reference tables from the user's own CSV files."""
    from sqlalchemy import create_engine

    from spatial.reference.load import ReferenceDataError, ReferenceFiles, load_reference

    files = ReferenceFiles(
        departments=args.departments, component_classes=args.component_classes,
        event_categories=args.event_categories, category_classes=args.category_classes, holidays=args.holidays,
    )
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            counts = load_reference(conn, files)
    except ReferenceDataError as exc:
        _err(f"nothing was loaded: {exc}")
        return 2
    finally:
        engine.dispose()
    print("loaded: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a slice of the component registry to a file, streamed, with a progress bar."""
    from datetime import datetime

    from sqlalchemy import create_engine
    from tqdm import tqdm

    from spatial.components.export import export, format_of
    from spatial.components.registry import ComponentFilter
    from spatial.errors import GridlinkError

    engine = create_engine(_url())
    try:
        fmt = format_of(args.out, args.format)
        since = datetime.fromisoformat(args.changed_since) if args.changed_since else None
        slice_ = ComponentFilter(owner=args.owner, class_code=args.class_code, status=args.status, area=args.area,
                                 changed_since=since)
        with engine.connect() as conn, tqdm(unit=" rows", desc=args.out.name, disable=args.quiet) as bar:
            done = export(conn, slice_, args.out, fmt, progress=bar.update)
    except (GridlinkError, ValueError) as exc:
        _err(f"nothing was exported: {getattr(exc, 'detail', exc)}")
        return 2
    finally:
        engine.dispose()
    print(f"{done.rows:,} components exported to {', '.join(str(p) for p in done.files) or 'no file (none matched)'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the API and the map."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    url = _url()
    api = ApiSettings(host=args.host, port=args.port)
    print(f"serving the gridlink map at {api.base_url()}/  (Ctrl+C to stop)")
    workers = getattr(args, "workers", 1)
    # Forwarding headers only from the configured proxies: uvicorn by itself believes any loopback peer.
    options: dict = {"host": args.host, "port": args.port, "log_level": getattr(args, "log_level", "info"),
                     "proxy_headers": bool(api.trusted_proxies), "forwarded_allow_ips": api.trusted_proxies or None}
    if workers > 1:
        # Worker processes build their own app from the environment: hand them the resolved database.
        os.environ["GRIDLINK_DATABASE_URL"] = url
        uvicorn.run("api.app:create_app", factory=True, workers=workers, **options)
        return 0
    uvicorn.run(create_app(_settings(), api, url=url), **options)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Set everything up and serve the demo map."""
    status = cmd_demo(args)
    return status if status else cmd_serve(args)


def parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    from api.settings import ApiSettings

    api = ApiSettings()
    top = argparse.ArgumentParser(prog="gridlink", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="the embedded PostgreSQL + PostGIS cluster")
    db.add_argument("action", choices=("start", "stop", "status", "url"))
    db.set_defaults(func=cmd_db)
    sub.add_parser("migrate", help="upgrade the schema").set_defaults(func=cmd_migrate)
    for name, func, text in (("demo", cmd_demo, "build the Suzhou demo"),
                             ("up", cmd_up, "start, migrate, build the demo and serve the map")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--small", action="store_true", help="a tiny variant (seconds to build)")
        p.add_argument("--seed", type=int, default=20261116)
        p.add_argument("--force", action="store_true", help="replace whatever the database holds")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--host", default=api.host)
            p.add_argument("--port", type=int, default=api.port)
    serve = sub.add_parser("serve", help="serve the API and the map")
    serve.add_argument("--host", default=api.host)
    serve.add_argument("--port", type=int, default=api.port)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (one per core is a good start)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(func=cmd_serve)
    imp = sub.add_parser("import", help="load data from files")
    imp.add_argument("what", choices=("reference", "cases", "components"))
    imp.add_argument("file", nargs="?", type=Path, help="cases: a GeoJSON FeatureCollection or CSV file;"
                     " components: a GeoPackage, Shapefile, GeoJSON, FlatGeobuf or CSV survey")
    imp.add_argument("--all-or-nothing", action="store_true", help="refuse the whole file if any row fails")
    imp.add_argument("--report", type=Path, help="write the report as JSON here")
    imp.add_argument("--owner", help="components: the owner (department key) the survey belongs to")
    imp.add_argument("--mapping", type=Path, help="components: JSON object column → field (null: leave out)")
    imp.add_argument("--crs", help="components: the survey's CRS when the file names none or a wrong one")
    imp.add_argument("--encoding", help="components: the text encoding of a Shapefile without .cpg (e.g. GBK)")
    imp.add_argument("--layer", help="components: the layer of a multi-layer file")
    imp.add_argument("--dry-run", action="store_true", help="components: report without storing")
    imp.add_argument("--rejects", type=Path, help="components: write refused rows here (input format + reason)")
    imp.add_argument("--retire-missing", action="store_true",
                     help="components: retire (status removed) registered components the survey lacks")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    for option in ("departments", "component-classes", "event-categories", "category-classes", "holidays"):
        imp.add_argument(f"--{option}", type=Path, default=None)
    imp.set_defaults(func=cmd_import)
    exp = sub.add_parser("export", help="write data to files")
    exp.add_argument("what", choices=("components",))
    exp.add_argument("out", type=Path, help="the file to write (its suffix names the format unless --format)")
    exp.add_argument("--format", choices=("gpkg", "geojson", "csv", "fgb", "shp"))
    exp.add_argument("--owner", help="only this owner's components")
    exp.add_argument("--class", dest="class_code", help="only this class (4 digits)")
    exp.add_argument("--status", help="only this status")
    exp.add_argument("--area", help="only in this area (grid code of any level)")
    exp.add_argument("--changed-since", help="only those changed since (ISO 8601 time)")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=cmd_export)
    user = sub.add_parser("user", help="accounts")
    user.add_argument("action", choices=("add", "disable", "enable", "password"))
    user.add_argument("login")
    user.add_argument("--role", help="add: the account's role")
    user.add_argument("--scope", help="add: an area code, a department key, or * (admins)")
    user.add_argument("--name", default=None, help="display name")
    user.set_defaults(func=cmd_user)
    tok = sub.add_parser("token", help="bearer tokens (also Open311 api_key)")
    tok.add_argument("action", choices=("create", "revoke", "revoke-all"))
    tok.add_argument("subject", help="create, revoke-all: the LOGIN; revoke: the TOKEN")
    tok.add_argument("--label", default=None)
    expiry = tok.add_mutually_exclusive_group()
    expiry.add_argument("--days", type=_token_days, default=90,
                        help=f"create: days until it expires, 1-{MAX_TOKEN_DAYS} (default 90)")
    expiry.add_argument("--no-expiry", action="store_true",
                        help="create: a token that never expires (partner systems; revoke it when done)")
    tok.set_defaults(func=cmd_token)
    bak = sub.add_parser("backup", help="dump the database into one file (pg_dump custom format)")
    bak.add_argument("file", nargs="?", type=Path, default=None)
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser("restore", help="restore a backup into an empty database")
    res.add_argument("file", type=Path)
    res.add_argument("--database", default=None, help="target database (default: the configured one)")
    res.add_argument("--replace", action="store_true", help="drop and replace what the target holds")
    res.set_defaults(func=cmd_restore)
    return top


MAX_TOKEN_DAYS = 366


def _token_days(value: str) -> int:
    """``--days``: a whole number of days from 1 to ``MAX_TOKEN_DAYS`` (0 once meant "never expires")."""
    days = int(value) if value.strip().lstrip("-").isdigit() else 0
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise argparse.ArgumentTypeError(f"a token lives 1 to {MAX_TOKEN_DAYS} days (for ever only with"
                                         " --no-expiry)")
    return days


def _cli_actor():
    """The audit actor of a command typed on this machine: ``cli:<os user>``."""
    import getpass

    from spatial.access.audit import Actor

    return Actor(f"cli:{getpass.getuser()}", None, "local")


def _read_password() -> str:
    """The new password: asked twice on a terminal, else the first line of standard input."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user(args: argparse.Namespace) -> int:
    """Create an account (the password is read from standard input; there is no default password), disable or
    enable one, or reset its password."""
    if args.action != "add":
        return _change_user(args)
    if not args.role or not args.scope:
        _err("user add needs --role and --scope")
        return 2
    from sqlalchemy import create_engine

    from spatial.access.accounts import add_user
    from spatial.access.audit import record
    from spatial.errors import GridlinkError

    try:
        password = _read_password()
    except ValueError as exc:
        _err(str(exc))
        return 2
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            account = add_user(conn, args.login, role=args.role, scope=args.scope, password=password,
                               display_name=args.name)
            record(conn, _cli_actor(), "account.create", target=args.login,
                   detail={"role": args.role, "scope": args.scope})
    except GridlinkError as exc:
        _err(f"no account made: {exc.detail}")
        return 2
    finally:
        engine.dispose()
    print(f"account {args.login} ({args.role}, scope {args.scope}) made, id {account}")
    return 0


def _change_user(args: argparse.Namespace) -> int:
    """Disable, enable, or reset the password of an account; audited, and heard by running servers at once."""
    from sqlalchemy import create_engine

    from spatial.access import accounts
    from spatial.access.audit import record
    from spatial.errors import GridlinkError

    try:
        password = _read_password() if args.action == "password" else ""
    except ValueError as exc:
        _err(str(exc))
        return 2
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            if args.action == "password":
                accounts.set_password(conn, args.login, password)
            else:
                {"disable": accounts.disable_account, "enable": accounts.enable_account}[args.action](conn, args.login)
            record(conn, _cli_actor(), f"account.{args.action}", target=args.login)
    except GridlinkError as exc:
        _err(f"nothing changed: {exc.detail}")
        return 2
    finally:
        engine.dispose()
    print({"disable": f"account {args.login} disabled; its tokens are revoked",
           "enable": f"account {args.login} enabled (it needs new tokens)",
           "password": f"password of {args.login} reset; its tokens are revoked"}[args.action])
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Create (print once) or revoke a bearer token."""
    from datetime import timedelta

    from sqlalchemy import create_engine

    from spatial.access.accounts import create_token, revoke_all_tokens, revoke_token
    from spatial.access.audit import record
    from spatial.errors import GridlinkError

    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            if args.action == "revoke-all":
                count = revoke_all_tokens(conn, args.subject)
                record(conn, _cli_actor(), "token.revoke_all", target=args.subject, detail={"revoked": count})
                print(f"{count} tokens revoked")
                return 0
            if args.action == "revoke":
                if not revoke_token(conn, args.subject):
                    _err("no active token like that")
                    return 2
                record(conn, _cli_actor(), "token.revoke")
                print("revoked")
                return 0
            ttl = None if args.no_expiry else timedelta(days=args.days)
            token, expires = create_token(conn, args.subject, label=args.label, ttl=ttl)
            record(conn, _cli_actor(), "token.create", target=args.subject, detail={"label": args.label})
    except GridlinkError as exc:
        _err(exc.detail)
        return 2
    finally:
        engine.dispose()
    print(token)
    print(f"expires {expires.isoformat() if expires else 'never'}; shown once, stored only as a digest",
          file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Dump the database into one file."""
    from datetime import datetime

    from spatial.store.backup import BackupError, backup

    target = args.file or _settings().home / "backups" / f"gridlink-{datetime.now():%Y%m%d-%H%M%S}.dump"
    try:
        done = backup(_url(), target)
    except BackupError as exc:
        _err(str(exc))
        return 2
    print(f"backup written: {done} ({done.stat().st_size / 1e6:,.1f} MB)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into an empty database (or replace one, when told)."""
    from sqlalchemy import make_url

    from spatial.store.backup import BackupError, restore

    url = _url()
    if args.database:
        url = make_url(url).set(database=args.database).render_as_string(hide_password=False)
    try:
        restore(args.file, url, replace=args.replace)
    except BackupError as exc:
        _err(str(exc))
        return 2
    print(f"restored {args.file} into {make_url(url).database}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClusterError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
