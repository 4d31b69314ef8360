"""Benchmark: OGC API Features on the full demo — gridlink's /ogc against pygeoapi's stock PostgreSQL provider
and tipg, side by side in one run on the same database.

    .venv/bin/python -m bench.ogc [--repeat 15]

1. The full demo (942 + 899 base grids, 680,000 components, a year of cases) is built once in the benchmark's
   template database (shared with bench/intake.py) and read, never written.
2. The peers live in their own virtual environment (bench/.peers, made on first use with pip; never product
   dependencies): pygeoapi (same version as ours) with its PostgreSQL provider on the ``component`` table,
   and tipg, which publishes the tables itself. Every server runs as one uvicorn process on loopback.
3. Each row is one request, sent ``repeat`` times (after two warm-ups) to each server in turn from one
   keep-alive connection; the table shows median milliseconds and the peers' time over ours (> 1: we are
   faster). Each server's answer is checked: status 200 and the same number of features.
Rows: items limit=100 in a 1 km² bbox; limit=1000; a deep page (after 100,000 items: our cursor, the peers'
offset); a single item; the first page (limit=100) for the deep page's comparison; component tiles at z12,
z14 and z16, cold (distinct tiles, each once) and cached (one tile again) — against tipg only: pygeoapi's
PostgreSQL provider serves no tiles.
Writes bench/results/ogc.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import machine, save
from bench.intake import bench_token, template
from spatial.features import encode_cursor
from spatial.settings import DatabaseSettings
from spatial.store.cluster import free_port

PEERS = Path(__file__).resolve().parent / ".peers"
PEER_PACKAGES = ["pygeoapi==0.24.0", "geoalchemy2", "tipg", "uvicorn[standard]", "psycopg2-binary"]
BBOX = (120.600, 31.250, 120.6105, 31.259)  # ≈ 1 km × 1 km in a town centre of Wuzhong


AUTH: dict[str, str] = {}  # our Authorization header, set in main

def ensure_peers() -> Path:
    """The peers' virtual environment (made once)."""
    python = PEERS / "bin" / "python"
    if not (PEERS / ".installed").exists():
        print("bench: installing pygeoapi and tipg into bench/.peers (one time) …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *PEER_PACKAGES], check=True)
        (PEERS / ".installed").touch()
    return python


def _pygeoapi_config(url: str, port: int) -> str:
    """pygeoapi's YAML for the stock PostgreSQL provider on our component table."""
    parts = urllib.parse.urlsplit(url.replace("+psycopg2", ""))
    data = {"host": parts.hostname, "port": parts.port, "dbname": parts.path.lstrip("/"),
            "user": parts.username, "password": urllib.parse.unquote(parts.password or ""),
            "search_path": ["public"]}
    config = {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["en-US"],
                   "limits": {"default_items": 100, "max_items": 10000}, "pretty_print": False,
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "peer", "description": "peer", "keywords": ["peer"],
                                        "keywords_type": "theme", "terms_of_service": "", "url": ""},
                     "license": {"name": "CC-BY 4.0", "url": ""}, "provider": {"name": "peer", "url": ""},
                     "contact": {"name": "peer", "position": "", "address": "", "city": "", "stateorprovince": "",
                                 "postalcode": "", "country": "", "phone": "", "fax": "", "email": "", "url": "",
                                 "hours": "", "instructions": "", "role": "pointOfContact"}},
        "resources": {"components": {
            "type": "collection", "title": "components", "description": "components", "keywords": ["c"],
            "extents": {"spatial": {"bbox": [119.9, 30.7, 121.4, 32.1],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "PostgreSQL", "data": data, "id_field": "code",
                           "table": "component", "geom_field": "geom"}]}},
    }
    return json.dumps(config)  # JSON is YAML


def start(argv: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen:
    """Start a server and wait until ``probe`` answers 200."""
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", probe)
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{argv} did not start: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")


def timed(port: int, path: str, repeat: int) -> tuple[float, int, int]:
    """Median milliseconds of ``repeat`` GETs of ``path`` (after two warm-ups), bytes and feature count."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples, body = [], b""
    for i in range(repeat + 2):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Accept": "application/geo+json, application/json", **AUTH})
        reply = connection.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{port}{path}: {reply.status} {body[:300]!r}")
        if i >= 2:
            samples.append((time.perf_counter() - started) * 1000)
    if not body.lstrip().startswith(b"{"):
        return statistics.median(samples), len(body), 0
    document = json.loads(body)
    count = len(document["features"]) if "features" in document else 1
    return statistics.median(samples), len(body), count


def timed_each(port: int, paths: list[str]) -> tuple[float, int]:
    """Median milliseconds over ``paths`` requested once each (cold: nothing cached), and median bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples, sizes = [], []
    for path in paths:
        started = time.perf_counter()
        connection.request("GET", path, headers=AUTH)
        reply = connection.getresponse()
        body = reply.read()
        if reply.status not in (200, 204):
            raise RuntimeError(f"{port}{path}: {reply.status} {body[:300]!r}")
        samples.append((time.perf_counter() - started) * 1000)
        sizes.append(len(body))
    return statistics.median(samples), int(statistics.median(sizes))


def tile_rows(ours: int, tipg: int, repeat: int) -> dict[str, dict[str, tuple[float, int]]]:
    """Component tiles at z12/z14/z16 around the bbox's centre: cold (distinct tiles, each once) and cached
    (one tile again and again). pygeoapi's PostgreSQL provider serves no tiles."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    lon, lat = (BBOX[0] + BBOX[2]) / 2, (BBOX[1] + BBOX[3]) / 2
    rows: dict[str, dict[str, tuple[float, int]]] = {}
    for z in (12, 14, 16):
        centre = tms.tile(lon, lat, z)
        near = sorted(((dx, dy) for dx in range(-3, 4) for dy in range(-3, 4)), key=lambda d: abs(d[0]) + abs(d[1]))
        ring = [(centre.x + dx, centre.y + dy) for dx, dy in near][: repeat + 1]  # the centre first
        ours_paths = [f"/tiles/components/{z}/{x}/{y}.mvt" for x, y in ring]
        tipg_paths = [f"/collections/public.component/tiles/WebMercatorQuad/{z}/{x}/{y}" for x, y in ring]
        rows[f"tile z{z}, cold"] = {"gridlink": timed_each(ours, ours_paths[1:]),
                                    "tipg": timed_each(tipg, tipg_paths[1:])}
        cached_ours = timed(ours, ours_paths[0], repeat)
        cached_tipg = timed_tile(tipg, tipg_paths[0], repeat)
        rows[f"tile z{z}, cached"] = {"gridlink": (cached_ours[0], cached_ours[1]), "tipg": cached_tipg}
    return rows


def timed_tile(port: int, path: str, repeat: int) -> tuple[float, int]:
    """Median milliseconds of ``repeat`` GETs of a tile (after two warm-ups) and its bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples, body = [], b""
    for i in range(repeat + 2):
        started = time.perf_counter()
        connection.request("GET", path, headers=AUTH)
        reply = connection.getresponse()
        body = reply.read()
        if i >= 2:
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), len(body)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    settings = DatabaseSettings()
    url = template(settings)  # the full demo, built once
    # Components need an account on our side (spatial/access/scope.py); the peers ignore the header.
    AUTH["Authorization"] = f"Bearer {bench_token(url)}"
    engine = create_engine(url)
    with engine.connect() as conn:
        deep_code = conn.execute(text("SELECT code FROM component ORDER BY code OFFSET 99999 LIMIT 1")).scalar_one()
        one_code = conn.execute(text("SELECT code FROM component ORDER BY code OFFSET 12345 LIMIT 1")).scalar_one()
    engine.dispose()
    ensure_peers()
    ours, pygeoapi, tipg = free_port(), free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="gridlink-bench-ogc-"))
    (work / "pygeoapi.yml").write_text(_pygeoapi_config(url, pygeoapi))
    subprocess.run([str(PEERS / "bin" / "pygeoapi"), "openapi", "generate", str(work / "pygeoapi.yml"),
                    "--output-file", str(work / "openapi.yml")], check=True, capture_output=True,
                   env={**os.environ, "PYGEOAPI_CONFIG": str(work / "pygeoapi.yml")})
    box = ",".join(str(v) for v in BBOX)
    rows = {
        "bbox 1 km², limit=100": (f"/ogc/collections/components/items?limit=100&bbox={box}",
                                  f"/collections/components/items?f=json&limit=100&bbox={box}",
                                  f"/collections/public.component/items?limit=100&bbox={box}"),
        "limit=100 (first page)": ("/ogc/collections/components/items?limit=100",
                                   "/collections/components/items?f=json&limit=100",
                                   "/collections/public.component/items?limit=100"),
        "limit=1000": ("/ogc/collections/components/items?limit=1000",
                       "/collections/components/items?f=json&limit=1000",
                       "/collections/public.component/items?limit=1000"),
        "deep page (after 100,000), limit=100": (
            f"/ogc/collections/components/items?limit=100&cursor={encode_cursor([deep_code])}",
            "/collections/components/items?f=json&limit=100&offset=100000",
            "/collections/public.component/items?limit=100&offset=100000&sortby=code"),
        "single item": (f"/ogc/collections/components/items/{one_code}",
                        f"/collections/components/items/{one_code}?f=json",
                        f"/collections/public.component/items/{one_code}"),
    }
    servers = []
    try:
        servers.append(start([sys.executable, "-m", "api.cli", "serve", "--port", str(ours), "--log-level", "warning"],
                             {"GRIDLINK_DATABASE_URL": url}, ours, "/ogc/collections"))
        servers.append(start([str(PEERS / "bin" / "uvicorn"), "pygeoapi.starlette_app:APP", "--port", str(pygeoapi),
                              "--log-level", "warning"],
                             {"PYGEOAPI_CONFIG": str(work / "pygeoapi.yml"),
                              "PYGEOAPI_OPENAPI": str(work / "openapi.yml")}, pygeoapi, "/collections?f=json"))
        servers.append(start([str(PEERS / "bin" / "uvicorn"), "tipg.main:app", "--port", str(tipg), "--log-level",
                              "warning"],
                             {"DATABASE_URL": url.replace("+psycopg2", ""), "TIPG_MAX_FEATURES_PER_QUERY": "10000",
                              "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.component"]'},
                             tipg, "/collections"))
        results = {}
        for name, (a, b, c) in rows.items():
            results[name] = {peer: timed(port, path, args.repeat)
                             for peer, port, path in (("gridlink", ours, a), ("pygeoapi", pygeoapi, b),
                                                      ("tipg", tipg, c))}
        tiles = tile_rows(ours, tipg, args.repeat)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    print(f"\n{'row':40} {'gridlink':>10} {'pygeoapi':>10} {'tipg':>10} {'pygeoapi/us':>12} {'tipg/us':>8}  features")
    for name, got in results.items():
        us, py, tg = got["gridlink"][0], got["pygeoapi"][0], got["tipg"][0]
        counts = "/".join(str(got[p][2]) for p in ("gridlink", "pygeoapi", "tipg"))
        print(f"{name:40} {us:9.1f}  {py:9.1f}  {tg:9.1f}  {py / us:11.2f}  {tg / us:7.2f}  {counts}")
    print(f"\n{'tiles (components)':40} {'gridlink':>10} {'tipg':>10} {'tipg/us':>8}  bytes (us/tipg)")
    for name, got in tiles.items():
        us, tg = got["gridlink"], got["tipg"]
        print(f"{name:40} {us[0]:9.1f}  {tg[0]:9.1f}  {tg[0] / us[0]:7.2f}  {us[1]}/{tg[1]}")
    save("ogc.json", {
        "machine": machine(),
        "repeat": args.repeat, "rows": {k: {p: {"ms": round(v[0], 2), "bytes": v[1], "features": v[2]}
                                            for p, v in got.items()} for k, got in results.items()},
        "tiles": {k: {p: {"ms": round(v[0], 2), "bytes": v[1]} for p, v in got.items()}
                  for k, got in tiles.items()}})


if __name__ == "__main__":
    main()
