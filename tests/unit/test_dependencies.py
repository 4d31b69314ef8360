"""Every dependency pyproject.toml declares is used, and every third-party module the code imports is declared.

The product's packages (api, spatial, tiles, web, migrations) may import only the runtime dependencies;
tests and benchmarks may also import the ``dev`` extra. A distribution that serves only indirectly is named
in ``INDIRECT`` with the reason, so that dropping its user drops it too.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("api", "spatial", "tiles", "web", "migrations")
FIRST_PARTY = {*PRODUCT, "tests", "bench"}
# Modules of the test machine's system Python (run as subprocesses), not of the virtual environment.
SYSTEM_ONLY = {"qgis"}
# Declared distributions that nothing imports by name, and why they are needed.
INDIRECT = {
    "python-multipart": "FastAPI parses form bodies (POST /api/v1/auth/token, Open311) with it",
    "httpx": "fastapi.testclient.TestClient runs on it",
    "ruff": "a command of the test script",
    "mypy": "a command of the test script",
    "import-linter": "a command of the test script (lint-imports)",
    "types-tqdm": "type stubs read by mypy",
    "schemathesis": "run as a command-line tool by tests/integration/test_schemathesis.py",
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    return runtime, dev


@cache
def _imports(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Top-level third-party module → the files importing it."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            if "vendor" in path.parts or any(part.startswith(".") for part in path.relative_to(ROOT).parts):
                continue  # pinned front-end code, and virtual environments (bench/.peers) beside the sources
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top not in SYSTEM_ONLY:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def _module_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in _module_distributions().get(module, [])}


def test_the_product_imports_only_runtime_dependencies() -> None:
    runtime, _ = _declared()
    undeclared = {module: sorted(files) for module, files in _imports(PRODUCT).items()
                  if not _distributions(module) & runtime}
    assert not undeclared, f"imported by the product but not declared in [project] dependencies: {undeclared}"


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    runtime, dev = _declared()
    undeclared = {module: sorted(files) for module, files in _imports(("tests", "bench")).items()
                  if not _distributions(module) & (runtime | dev)}
    assert not undeclared, f"imported by tests or benchmarks but declared nowhere: {undeclared}"


@pytest.mark.parametrize("extra", ["runtime", "dev"])
def test_every_declared_dependency_is_used(extra: str) -> None:
    runtime, dev = _declared()
    declared = runtime if extra == "runtime" else dev
    folders = PRODUCT if extra == "runtime" else (*PRODUCT, "tests", "bench")
    used = set().union(*(_distributions(module) for module in _imports(folders)))
    unused = sorted(declared - used - set(INDIRECT))
    assert not unused, f"declared ({extra}) but never imported: {unused} — drop them or name the reason in INDIRECT"
