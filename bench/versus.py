"""Benchmark: one bulk batch against another revision of gridlink and this one, alternating, on the same data.

    .venv/bin/python -m bench.versus REV [--rounds 3] [--bulk 100000]

For a change that should not move the bulk path (a restructure), when the machine's speed drifts too much
between sessions for BENCHMARKS.md's older rows to be a reference. REV is checked out into a temporary git
worktree and served by this virtual environment (so both sides run the same libraries); each round posts
the same batch of fresh reports (bench/intake.py's ``sample_reports``) to REV and then to this checkout, each
on a fresh copy of the full-demo template of bench/intake.py and one ``gridlink serve --workers 2``. Prints
every run and the medians, and whether both sides decided the batch alike (created / duplicates / refused).
The schema must be the same on both sides (no migration between them).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.intake import bench_token, bulk, fresh_copy, sample_reports, start_server, template
from spatial.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = "gridlink_bench_versus"


def one_run(settings: DatabaseSettings, tree: Path, reports: list[dict], size: int) -> dict:
    """Post the batch to a server of ``tree`` on a fresh copy of the template."""
    url = fresh_copy(settings, SCRATCH)
    token = bench_token(url)
    server, port = start_server(url, 2, str(tree))
    try:
        return bulk(port, reports, size, token)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="the other revision (a commit, tag or branch of this repository)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=100_000)
    args = parser.parse_args()
    settings = DatabaseSettings()
    template(settings)
    reports = sample_reports(fresh_copy(settings, SCRATCH), args.bulk, seed=11)
    with tempfile.TemporaryDirectory(prefix="gridlink-versus-") as folder:
        other = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), args.revision], cwd=ROOT, check=True)
        try:
            runs: dict[str, list[dict]] = {args.revision: [], "this": []}
            for _ in range(args.rounds):
                for name, tree in ((args.revision, other), ("this", ROOT)):
                    result = one_run(settings, tree, reports, args.bulk)
                    runs[name].append(result)
                    print(f"{name:>12}: {result['seconds']:6.2f} s  created {result['created']}  duplicates "
                          f"{result['duplicates']}  refused {result['refused']}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    decisions = {name: {(r["created"], r["duplicates"], r["refused"]) for r in rs} for name, rs in runs.items()}
    for name, results in runs.items():
        print(f"{name:>12}: median {statistics.median(r['seconds'] for r in results):.2f} s")
    same = len(set().union(*decisions.values())) == 1
    print("both sides decided the batch alike" if same else f"the sides decided differently: {decisions}")


if __name__ == "__main__":
    main()
