"""The codes of SPEC "Grids" and "Components", once: widths, patterns, kinds and the helpers that read them.

Grid codes nest: a district has 6 digits, a town 9, a community 12, a base grid 15, and a child's code
extends its parent's by three digits, so an ancestor's code is a prefix of every descendant's. Special grids
(enterprise, park, scenic, commercial) are ``<district><letter><4-digit serial>``. A component code has 16
digits: district (6) + class (4) + serial (6). Everything here is pure (no database, no I/O); the database
checks the same rules in the constraints of ``spatial/store/models`` built from these constants.
"""

from __future__ import annotations

import re

# level → the width of its codes (1 district, 2 town, 3 community, 4 base grid)
LEVEL_WIDTHS: dict[int, int] = {1: 6, 2: 9, 3: 12, 4: 15}
# level → the grid kind of that level
LEVEL_KINDS: dict[int, str] = {1: "district", 2: "town", 3: "community", 4: "base"}
# level → the name a case reply gives that level's area
LEVEL_NAMES: dict[int, str] = {1: "district", 2: "town", 3: "community", 4: "grid"}
DISTRICT_WIDTH, TOWN_WIDTH, COMMUNITY_WIDTH, BASE_WIDTH = (LEVEL_WIDTHS[n] for n in (1, 2, 3, 4))

# One letter per special kind in the special grid code.
SPECIAL_LETTERS: dict[str, str] = {"enterprise": "E", "park": "P", "scenic": "S", "commercial": "C"}
SPECIAL_KINDS: tuple[str, ...] = tuple(SPECIAL_LETTERS)
KIND_OF_LETTER: dict[str, str] = {letter: kind for kind, letter in SPECIAL_LETTERS.items()}
GRID_KINDS: tuple[str, ...] = tuple(LEVEL_KINDS.values()) + SPECIAL_KINDS
# The special kinds as a SQL list literal, for hand-written SQL (constants, never request data).
SPECIAL_KINDS_SQL = "(" + ", ".join(f"'{kind}'" for kind in SPECIAL_KINDS) + ")"

_LETTERS = "".join(SPECIAL_LETTERS.values())
AREA_CODE = re.compile("^(?:" + "|".join(f"[0-9]{{{w}}}" for w in LEVEL_WIDTHS.values()) + ")$")
BASE_CODE = re.compile(f"^[0-9]{{{BASE_WIDTH}}}$")
# The patterns as text serve PostgreSQL (models' CHECKs) and pydantic field patterns; compiled, Python checks.
SPECIAL_CODE_SQL = f"^[0-9]{{{DISTRICT_WIDTH}}}[{_LETTERS}][0-9]{{4}}$"
SPECIAL_CODE = re.compile(SPECIAL_CODE_SQL)
COMPONENT_CODE_PATTERN = r"^[0-9]{16}$"
COMPONENT_CODE = re.compile(COMPONENT_CODE_PATTERN)


def ancestor(code: str, level: int) -> str:
    """The code of ``code``'s ancestor at ``level`` (a prefix; a special grid's district for level 1)."""
    return code[:LEVEL_WIDTHS[level]]


def district_of(code: str) -> str:
    """The district code of a grid, special grid or component code (its first six digits)."""
    return code[:DISTRICT_WIDTH]


def town_of(code: str) -> str:
    """The town code of a base grid or community code."""
    return code[:TOWN_WIDTH]


def community_of(code: str) -> str:
    """The community code of a base grid code."""
    return code[:COMMUNITY_WIDTH]


def lineage(base_code: str) -> list[str]:
    """The codes of a base grid's district, town, community and itself, top down."""
    return [base_code[:width] for width in LEVEL_WIDTHS.values()]


def prefix_range(area: str) -> tuple[str, str]:
    """The base-grid codes of ``area`` as an inclusive range (fixed-width digits: a B-tree can use it)."""
    return area.ljust(BASE_WIDTH, "0"), area.ljust(BASE_WIDTH, "9")


def special_kind(code: str) -> str:
    """The kind of a special grid from the letter of its code."""
    return KIND_OF_LETTER[code[DISTRICT_WIDTH]]


def component_class_of(code: str) -> str:
    """The 4-digit class of a 16-digit component code."""
    return code[DISTRICT_WIDTH:DISTRICT_WIDTH + 4]
