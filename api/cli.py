"""The ``gridlink`` command: database, migrations, demo, server.

    gridlink db start|stop|status|url   the embedded PostgreSQL + PostGIS cluster under .gridlink/
    gridlink db replica add [--name N] | list | remove N   hot standbys of it on this machine
    gridlink db promote [N]             make standby N (the only one if not named) the writable primary
    gridlink db maintain                monthly partitions of the case trails: stray rows moved, months made ahead
    gridlink db archive --before YYYY-MM [--dump DIR]   detach (and dump, then drop) the months before one
    gridlink migrate                    upgrade the schema to the newest revision
    gridlink demo [--small | --scale small|city|province] [--fraction F] [--seed N] [--force]
    gridlink import reference [--departments F] [--component-classes F] [--event-categories F] ...
    gridlink import cases FILE [--all-or-nothing] [--report OUT.json]
    gridlink import grids FILE --level N|special [--code-field F] [--name-field F] [--parent-field F] [--crs EPSG]
                                         [--layer L] [--sliver-m2 A] [--draft | --dry-run] [--report OUT.json]
    gridlink plan list | new TITLE | show ID | preview ID | edit ID EDIT.json | commit ID [--at T] | cancel ID
                  | rollback ID
    gridlink import components FILE --owner KEY [--mapping M] [--crs EPSG] [--encoding E] [--dry-run]
                                    [--all-or-nothing] [--rejects OUT] [--retire-missing] [--report OUT.json]
                                    [--exclusive]
    gridlink export components OUT [--format gpkg|geojson|csv|fgb|shp] [--owner KEY] [--class C] [--status S]
                                   [--area CODE] [--changed-since TIME]
    gridlink serve [--host H] [--port P] [--workers N] [--scheduler]
    gridlink user add LOGIN --role ROLE --scope SCOPE [--name N]   (password on standard input)
    gridlink user disable|enable LOGIN  disabling revokes the account's tokens and stops its logins
    gridlink user password LOGIN        reset the password (standard input); revokes the account's tokens
    gridlink token create LOGIN [--label L] [--days N (1-366) | --no-expiry]
    gridlink token revoke TOKEN
    gridlink token revoke-all LOGIN     sign an account out everywhere
    gridlink backup [FILE]              pg_dump (custom format); default .gridlink/backups/<time>.dump
    gridlink restore FILE [--database NAME] [--replace]
    gridlink cases act ID ACTION --as LOGIN [--note N] [--reason R] [--data JSON] [--target KEY[:AREA]]
        [--assist KEY[:AREA] …] [--if-match REV]
    gridlink worker [--every S]         the reminder / supervision scheduler (any number of them may run)
    gridlink up [--small]               all of the above, then serve the demo map

``GRIDLINK_DATABASE_URL`` points every command at an existing server instead of the embedded cluster.

Exit status of every command:
    0    done
    1    refused: the data broke a rule and nothing was stored (a file refused whole, a batch with
         --all-or-nothing, a dry run that found problems, a refused plan commit or workflow action)
    2    not run: bad usage, a missing or unreadable file, a database that cannot be reached
    3    db status: the embedded cluster is not running
    4    partly imported (import cases, import components): the valid rows were stored, the others refused;
         the report lists each refused row and why
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from api import cli_cases, cli_report
from spatial.settings import DatabaseSettings
from spatial.store.cluster import Cluster, ClusterError

# The exit statuses (the module docstring and README's "Exit status" say when).
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_PARTIAL = 0, 1, 2, 3, 4
CASES_CSV_HELP = """\
import cases FILE: a GeoJSON FeatureCollection of Point features (.geojson, .json) whose properties are
the report's fields, or UTF-8 CSV (.csv) with a header row naming these columns, in any order:
  category         required: a leaf event category code (E010101)
  lon, lat         required: WGS 84 degrees (EPSG:4326)
  description      optional text
  source           optional: inspector, hotline (default), public, video or dispatcher
  component_code   optional: the 16-digit code of the component concerned
  reported_at      optional: ISO 8601; a time without an offset is Beijing time (default: now)
  reporter_name    optional
  reporter_phone   optional
Every row becomes a case (assigned to its grid, owner and deadline), a duplicate linked to an open case, or
is refused with its reason. Exit 0: all stored; 4: partly imported (the valid rows stored, the others
refused: see --report); 1: nothing stored (--all-or-nothing, or every row refused); 2: not run.
"""


def _err(message: str) -> None:
    print(f"gridlink: {message}", file=sys.stderr)


def _import_status(refused: int, stored: int) -> int:
    """The exit status of an import that stored ``stored`` rows and refused ``refused``, said on stderr when
    it is not a plain success."""
    if refused == 0:
        return EXIT_OK
    if stored:
        _err(f"partly imported: {stored:,} rows stored, {refused:,} refused (exit {EXIT_PARTIAL})")
        return EXIT_PARTIAL
    _err(f"nothing imported: {refused:,} rows refused (exit {EXIT_REFUSED})")
    return EXIT_REFUSED


def _settings() -> DatabaseSettings:
    return DatabaseSettings()


def cmd_db(args: argparse.Namespace) -> int:
    """Start, stop or describe the embedded cluster; its replicas; promote one."""
    settings = _settings()
    if settings.url is not None and args.action != "url":
        _err("GRIDLINK_DATABASE_URL is set: the embedded cluster is not used")
        return 2
    cluster = Cluster(settings.home)
    try:
        if args.action in ("replica", "promote"):
            return _db_replicas(cluster, args)
        if args.action == "start":
            _refuse_split_brain(cluster)
            cluster.ensure_database(settings.name)
        elif args.action == "stop":
            cluster.stop()
            print("embedded PostgreSQL stopped")
        elif args.action == "status":
            return _db_status(cluster)
        elif args.action == "url":
            from spatial.store.db import database_url

            print(database_url(settings))
    except ClusterError as exc:
        _err(str(exc))
        return 1
    return 0


def _refuse_split_brain(cluster: Cluster) -> None:
    """ClusterError when a replica was promoted: starting the old primary would make two that take writes."""
    from spatial.store import replicas

    promoted = replicas.promoted(cluster)
    if promoted and not cluster.running():
        port = replicas.replica(cluster, promoted[0]).state()
        raise ClusterError(
            f"replica {promoted[0]} was promoted and is the primary now (127.0.0.1:{port.port if port else '?'}); "
            "starting the old one would make two primaries. Point GRIDLINK_DATABASE_URL at the new one, or "
            f"`gridlink db replica remove {promoted[0]}` to go back to the old primary")


def _db_status(cluster: Cluster) -> int:
    from spatial.store import replicas

    state = cluster.state()
    running = cluster.running()
    print(f"data folder: {cluster.pgdata}")
    print(f"state: {'running' if running else 'stopped' if state else 'not created'}")
    if state:
        print(f"port: 127.0.0.1:{state.port}")
    for line in replicas.status(cluster):
        print(_replica_line(line))
    return 0 if running else 3


def _replica_line(line) -> str:
    role = "standby" if line.standby else "promoted (a primary)"
    stream = f"{line.streaming}, {line.lag_bytes:,} bytes behind" if line.streaming else "not streaming"
    return (f"replica {line.name}: 127.0.0.1:{line.port} {'running' if line.running else 'stopped'}, "
            f"{role}, {stream}")


def _db_replicas(cluster: Cluster, args: argparse.Namespace) -> int:
    from spatial.store import replicas

    if args.action == "promote":
        names = replicas.names(cluster)
        name = args.name or (names[0] if len(names) == 1 else None)
        if name is None:
            _err(f"name the replica to promote: {', '.join(names) or 'there is none'}")
            return 2
        replicas.replica(cluster, name).promote()
        print(f"replica {name} promoted: it takes writes now (stop the old primary for good before it does too)")
    elif args.replica_action == "add":
        standby = replicas.add(cluster, args.name)
        state = standby.start()
        print(f"replica {standby.home.name} streaming on 127.0.0.1:{state.port}")
    elif args.replica_action == "list":
        for line in replicas.status(cluster):
            print(_replica_line(line))
    else:
        replicas.remove(cluster, args.name)
        print(f"replica {args.name} removed")
    return 0


def _url() -> str:
    from spatial.store.db import database_url

    return database_url(_settings())


def cmd_db_maintain(_args: argparse.Namespace) -> int:
    """Keep the monthly partitions (spatial/store/partitions.py) and narrow the months of open cases."""
    from sqlalchemy import create_engine

    from spatial.store.partitions import PartitionError, maintain

    engine = create_engine(_url())
    try:
        done = maintain(engine)
    except PartitionError as exc:
        _err(str(exc))
        return EXIT_REFUSED
    finally:
        engine.dispose()
    for table, count in done.months.items():
        print(f"{table}: {count} months, newest {done.newest[table]}; {done.moved[table]:,} rows moved out of"
              f" {table}_default")
    if done.open_months is None:
        print("open cases: the writers of cases held their lock too long; the months of open cases were left as"
              " they were (the next run narrows them)")
    else:
        held = done.open_months
        print(f"open cases: {len(held)} months hold them" + (f", {held[0]} to {held[-1]}" if held else ""))
    return EXIT_OK


def cmd_db_archive(args: argparse.Namespace) -> int:
    """Detach the months before --before from the partitioned tables; with --dump, dump and drop them."""
    from datetime import datetime

    from sqlalchemy import create_engine

    from spatial.store.backup import BackupError
    from spatial.store.partitions import PartitionError, archive

    try:
        before = datetime.strptime(args.before, "%Y-%m").date()
    except ValueError:
        _err(f"--before must be a month, YYYY-MM (not {args.before!r})")
        return EXIT_USAGE
    from spatial.access.audit import record

    engine = create_engine(_url())
    try:
        detached = archive(engine, before, args.dump)
        with engine.begin() as conn:  # the months that left the trails, in the trail of writes
            record(conn, _cli_actor(), "partition.archive", target=args.before,
                   detail={"months": detached, "dump": str(args.dump) if args.dump else None})
    except PartitionError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except BackupError as exc:
        _err(str(exc))
        return EXIT_REFUSED
    finally:
        engine.dispose()
    where = f"dumped into {args.dump} and dropped" if args.dump else "kept in the database as plain tables"
    print(f"{len(detached)} months detached ({where}): {', '.join(detached) or 'none'}")
    return EXIT_OK


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
    from spatial.demo.province import province_scale

    scale_name = getattr(args, "scale", None) or ("small" if args.small else "city")
    fraction = getattr(args, "fraction", None)
    if fraction is not None and scale_name != "province":
        _err("--fraction applies to --scale province only")
        return 2
    if args.small and scale_name != "small":
        _err("--small and --scale " + scale_name + " contradict each other")
        return 2
    if fraction is not None and not 0 < fraction <= 1:
        _err("--fraction must be in (0, 1]")
        return 2
    scale = province_scale(fraction or 1.0) if scale_name == "province" else None
    cmd_migrate(args)
    engine = create_engine(_url())
    started = time.perf_counter()
    try:
        report = build_demo(engine, seed=args.seed, small=scale_name == "small", force=args.force, scale=scale)
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
    if args.what == "grids":
        return _import_grids(args)
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
    try:
        body = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _err(f"cannot read {args.file}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}")
        return EXIT_USAGE
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
    return _import_status(report.refused, report.created + report.duplicates if report.stored else 0)


def _cli_principal():
    """The account a command typed on this machine acts as: the operator, an admin of the whole city."""
    import getpass

    from spatial.access.principal import Principal

    return Principal(0, f"cli:{getpass.getuser()}", "admin", "*")


def _print_findings(title: str, findings: list[dict], out) -> None:
    if findings:
        print(f"{title} ({len(findings)}):", file=out)
    for f in findings:
        where = f"at {f['location'][0]:.6f},{f['location'][1]:.6f}" if f["location"] else ""
        print(f"  {f['kind']:<14} {' '.join(f['codes']):<32} {f['area_m2']:>14,.1f} m² {where}  {f['action']}",
              file=out)


def _import_grids(args: argparse.Namespace) -> int:
    """Repair and check a file of grids, print the report, and store it as a plan (or refuse it)."""
    import json

    from sqlalchemy import create_engine

    from spatial.errors import GridImportRefusedError, GridlinkError
    from spatial.grids.importing import import_grids
    from spatial.grids.imports import Mapping

    if args.file is None or args.level is None:
        _err("import grids needs a FILE and --level 1|2|3|4|special")
        return 2
    mapping = Mapping(args.code_field, args.name_field, args.parent_field)
    store = "none" if args.dry_run else "draft" if args.draft else "commit"
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            result = import_grids(conn, _cli_principal(), _cli_actor(), args.file, args.level, mapping,
                                  crs=args.crs, layer=args.layer, sliver_m2=args.sliver_m2, store=store)
        report, code = result.as_dict(), 0
    except GridImportRefusedError as exc:
        report, code = exc.extra["report"], 1  # type: ignore[assignment]
        _err(exc.detail)
    except GridlinkError as exc:
        _err(f"nothing was imported: {exc.detail}")
        return 2
    finally:
        engine.dispose()
    _print_findings("repairs", report["repairs"], sys.stdout)
    _print_findings("problems", report["problems"], sys.stderr)
    if code == 0:
        print(f"{report['grids']} grids of level {args.level}: {report['state']}"
              + (f" as plan {report['plan']}" if report["plan"] else ""))
    if args.report:
        args.report.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return code


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
                                rejects=args.rejects, exclusive=args.exclusive)
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
    kept = report.new + report.changed + report.unchanged + report.retired
    return _import_status(report.refused, kept if report.stored else 0)


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
    api = ApiSettings(host=args.host, port=args.port, scheduler=getattr(args, "scheduler", False))
    if api.scheduler:
        os.environ["GRIDLINK_API_SCHEDULER"] = "1"  # worker processes build their settings from the environment
    print(f"serving the gridlink map at {api.base_url()}/  (Ctrl+C to stop)")
    workers = getattr(args, "workers", 1)
    # Forwarding headers only from the configured proxies: uvicorn by itself believes any loopback peer.
    options: dict = {"host": args.host, "port": args.port, "log_level": getattr(args, "log_level", "info"),
                     "proxy_headers": bool(api.trusted_proxies), "forwarded_allow_ips": api.trusted_proxies or None}
    if workers > 1:
        # Worker processes build their own app from the environment: hand them the resolved database.
        os.environ["GRIDLINK_DATABASE_URL"] = url
        # and one login back-off and public rate limit for all of them, unless told otherwise
        os.environ.setdefault("GRIDLINK_API_LIMITS", "database")
        uvicorn.run("api.app:create_app", factory=True, workers=workers, **options)
        return 0
    uvicorn.run(create_app(_settings(), api, url=url), **options)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the reminder / supervision scheduler until SIGINT or SIGTERM (spatial/cases/jobs.py)."""
    import asyncio
    import logging

    from spatial.cases import jobs
    from spatial.store.db import make_engine

    if args.every not in jobs.EVERY_S:
        _err(f"--every must divide a minute: one of {', '.join(map(str, jobs.EVERY_S))}")
        return 2
    url = _url()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine = make_engine(url, _settings(), request_timeouts=False)
    print(f"gridlink worker: reminders and supervision orders every {args.every} s (Ctrl+C to stop)", flush=True)
    try:
        asyncio.run(jobs.run(_settings().direct_url(url), engine, every_s=args.every))
    finally:
        engine.dispose()
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
    db = sub.add_parser("db", help="the embedded PostgreSQL + PostGIS cluster").add_subparsers(dest="action",
                                                                                                  required=True)
    for action in ("start", "stop", "status", "url"):
        db.add_parser(action).set_defaults(func=cmd_db)
    replica = db.add_parser("replica", help="hot standbys of the embedded cluster on this machine")
    replica_sub = replica.add_subparsers(dest="replica_action", required=True)
    replica_sub.add_parser("add").add_argument("--name", help="default: replica1, replica2, …")
    replica_sub.add_parser("list")
    replica_sub.add_parser("remove").add_argument("name")
    replica.set_defaults(func=cmd_db)
    promote = db.add_parser("promote", help="make a standby the writable primary (failover)")
    promote.add_argument("name", nargs="?", help="the replica; may be left out when there is one")
    promote.set_defaults(func=cmd_db)
    db.add_parser("maintain", help="monthly partitions: move stray rows, make the months ahead").set_defaults(
        func=cmd_db_maintain)
    arch = db.add_parser("archive", help="detach the months before one (and dump them, then drop)")
    arch.add_argument("--before", required=True, help="YYYY-MM: every month before this one")
    arch.add_argument("--dump", type=Path, help="a folder: dump each detached month there, then drop it")
    arch.set_defaults(func=cmd_db_archive)
    sub.add_parser("migrate", help="upgrade the schema").set_defaults(func=cmd_migrate)
    for name, func, text in (("demo", cmd_demo, "build the Suzhou demo"),
                             ("up", cmd_up, "start, migrate, build the demo and serve the map")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--small", action="store_true", help="a tiny variant (seconds to build)")
        p.add_argument("--seed", type=int, default=20261116)
        p.add_argument("--force", action="store_true", help="replace whatever the database holds")
        p.set_defaults(func=func)
        if name == "demo":
            p.add_argument("--scale", choices=("small", "city", "province"),
                           help="small (= --small), city (the Suzhou demo, the default) or province (a "
                                "synthetic Jiangsu: 150,000 base grids, 10 million components, 300,000 cases a day)")
            p.add_argument("--fraction", type=float,
                           help="province only: scale components and cases by F in (0, 1], grids kept")
        if name == "up":
            p.add_argument("--host", default=api.host)
            p.add_argument("--port", type=int, default=api.port)
    serve = sub.add_parser("serve", help="serve the API and the map")
    serve.add_argument("--host", default=api.host)
    serve.add_argument("--port", type=int, default=api.port)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (one per core is a good start)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.add_argument("--scheduler", action="store_true", default=api.scheduler,
                       help="run the reminder / supervision scheduler in each server process")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="the reminder / supervision scheduler (procrastinate)")
    worker.add_argument("--every", type=int, default=api.scheduler_every_s,
                        help="seconds between sweeps (divides a minute)")
    worker.set_defaults(func=cmd_worker)
    imp = sub.add_parser("import", help="load data from files", epilog=CASES_CSV_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("what", choices=("reference", "cases", "grids", "components"))
    imp.add_argument("file", nargs="?", type=Path, help="cases: a GeoJSON FeatureCollection or CSV file; grids:"
                     " a GeoPackage, Shapefile, GeoJSON or FlatGeobuf file; components: the same or a CSV survey")
    imp.add_argument("--all-or-nothing", action="store_true", help="cases, components: refuse the whole file if"
                     " any row fails")
    imp.add_argument("--report", type=Path, help="cases, grids, components: write the report as JSON here")
    imp.add_argument("--level", choices=("1", "2", "3", "4", "special"),
                     help="grids: 1 district … 4 base grid, or special (enterprise, park, scenic, commercial)")
    imp.add_argument("--code-field", default="code", help="grids: the column holding the code")
    imp.add_argument("--name-field", default="name", help="grids: the column holding the name")
    imp.add_argument("--parent-field", default=None, help="grids: the column holding the parent's code")
    imp.add_argument("--crs", default=None, help="grids, components: the file's CRS when it names none or a wrong"
                     " one (EPSG:4549)")
    imp.add_argument("--layer", default=None, help="grids, components: the layer of a multi-layer file")
    imp.add_argument("--sliver-m2", type=float, default=None, help="grids: gaps and overlaps up to this are"
                     " repaired (default per level: 1 km², 0.1 km², 10,000 m², 1,000 m²)")
    how = imp.add_mutually_exclusive_group()
    how.add_argument("--draft", action="store_true", help="grids: store as a draft plan, commit later")
    how.add_argument("--dry-run", action="store_true", help="grids, components: report only, store nothing")
    imp.add_argument("--owner", help="components: the owner (department key) the survey belongs to")
    imp.add_argument("--mapping", type=Path, help="components: JSON object column → field (null: leave out)")
    imp.add_argument("--encoding", help="components: the text encoding of a Shapefile without .cpg (e.g. GBK)")
    imp.add_argument("--rejects", type=Path, help="components: write refused rows here (input format + reason)")
    imp.add_argument("--retire-missing", action="store_true",
                     help="components: retire (status removed) registered components the survey lacks")
    imp.add_argument("--quiet", action="store_true", help="components: no progress bar")
    imp.add_argument("--exclusive", action="store_true",
                     help="components, admin, maintenance window only: a survey of 50,000 rows or more is merged"
                          " with the registry's foreign keys dropped — faster, but every reader of the registry"
                          " (search, /ogc, tiles, case intake) waits until the import commits")
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
    plan = sub.add_parser("plan", help="grid plans: list, new, show, preview, edit, commit, rollback")
    plan.add_argument("action", choices=("list", "new", "show", "preview", "edit", "commit", "cancel", "rollback"))
    plan.add_argument("target", nargs="?", default="", help="new: the TITLE; otherwise the plan's ID")
    plan.add_argument("file", nargs="?", default="-", help="edit: a JSON edit as POST …/edits takes (- stdin)")
    plan.add_argument("--at", default=None, help="commit: the effective time (ISO 8601; default now;"
                      " a future time schedules the plan)")
    plan.set_defaults(func=cmd_plan)
    bak = sub.add_parser("backup", help="dump the database into one file (pg_dump custom format)")
    bak.add_argument("file", nargs="?", type=Path, default=None)
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser("restore", help="restore a backup into an empty database")
    res.add_argument("file", type=Path)
    res.add_argument("--database", default=None, help="target database (default: the configured one)")
    res.add_argument("--replace", action="store_true", help="drop and replace what the target holds")
    res.set_defaults(func=cmd_restore)
    cli_cases.add_parser(sub)
    cli_report.add_parser(sub)
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


def cmd_plan(args: argparse.Namespace) -> int:
    """Grid plans from the command line (issue 19), as the operator (an admin): the REST calls' twins, JSON
    out. ``edit`` reads one edit as the body of ``POST /api/v1/plans/{id}/edits`` from a file (``-``: stdin)."""
    import json

    from sqlalchemy import create_engine

    from spatial.errors import GridlinkError

    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            result = _plan_action(conn, args)
    except GridlinkError as exc:
        _err(exc.detail)
        problems: list = exc.extra.get("problems", [])  # type: ignore[assignment]
        for problem in problems:
            print(f"  {problem['kind']} {' '.join(problem['codes'])} at {problem['location']}: {problem['action']}",
                  file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def _plan_action(conn, args: argparse.Namespace):
    import json
    from datetime import datetime

    from spatial.grids import plan_edits, planning, plans
    from spatial.grids.history import as_utc

    who, actor, target = _cli_principal(), _cli_actor(), args.target
    if args.action == "list":
        return plans.list_plans(conn, who)
    if args.action == "new":
        plan_id = plans.open_plan(conn, who, target)
        return plans.plan_public(conn, who, plan_id)
    plan_id = int(target)
    if args.action == "edit":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        body = json.loads(text)
        plan_edits.gesture(conn, who, plan_id, body.pop("op"), body)
        return plans.plan_public(conn, who, plan_id)
    if args.action == "preview":
        return planning.impact(conn, who, plan_id)
    if args.action == "commit":
        at = as_utc(datetime.fromisoformat(args.at)) if args.at else None
        return planning.commit(conn, who, actor, plan_id, effective_at=at)
    if args.action in ("rollback", "cancel"):
        return getattr(planning, args.action)(conn, who, actor, plan_id)
    return plans.plan_public(conn, who, plan_id)


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
