"""The in-process duplicate rule, on hand-made cases with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spatial.cases.assignment.duplicates import Cases, against_stored, within_batch
from spatial.cases.assignment.rules import trust_of

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
LON, LAT = 120.6, 31.3
M = 1 / 95_000  # about one metre of longitude at this latitude


def cases(*rows: tuple) -> Cases:
    """rows: (id, category, metres east of (LON, LAT), minutes after T0, component[, source]); the source
    is an inspector's unless given."""
    return Cases.of([r[0] for r in rows], [r[1] for r in rows], [LON + r[2] * M for r in rows],
                    [LAT] * len(rows), [T0 + timedelta(minutes=r[3]) for r in rows], [r[4] for r in rows],
                    [trust_of(r[5] if len(r) > 5 else "inspector") for r in rows])


def test_stored_nearest_within_50_m_same_category_and_window() -> None:
    stored = cases((10, "E1", 0, 0, None), (11, "E1", 30, 0, None), (12, "E2", 1, 0, None),
                   (13, "E1", 45, -24 * 60, None))  # exactly 24 h before the report: outside the window
    reports = cases((0, "E1", 40, 0, None),    # 11 is 10 m away, 10 is 40 m away
                    (1, "E1", 100, 0, None),   # nothing within 50 m
                    (2, "E2", 0, 0, None),     # 12, the only E2
                    (3, "E1", 45, 0, None),    # 11 (15 m); 13 is 0 m but 24 h old
                    (4, "E1", 0, -1, None))    # 10 and 11 came later: 13 (45 m, 23 h 59 min before)
    assert against_stored(reports, stored) == [11, None, 12, 11, 13]


def test_stored_same_component_wins_over_nearer_case() -> None:
    stored = cases((10, "E1", 0, 0, None), (11, "E1", 40, 5, "C1"), (12, "E1", 45, 1, "C1"))
    reports = cases((0, "E1", 0, 10, "C1"), (1, "E1", 0, 10, "C2"))
    # earliest on the same component (12 at +1 min) although 10 lies nearer; another component: nearest
    assert against_stored(reports, stored) == [12, 10]


def test_tie_goes_to_smaller_id() -> None:
    stored = cases((21, "E1", 10, 0, None), (20, "E1", -10, 0, None))
    assert against_stored(cases((0, "E1", 0, 0, None)), stored) == [20]


def test_within_batch_links_only_to_earlier_originals() -> None:
    rows = cases((100, "E1", 0, 0, None),   # original
                 (101, "E1", 20, 0, None),  # duplicate of 100
                 (102, "E1", 40, 0, None),  # 101 is nearer but a duplicate itself: links to 100 (40 m)
                 (103, "E1", 95, 0, None),  # 100 lies 95 m away: an original
                 (104, "E1", 60, 0, None),  # 103 at 35 m (100 is 60 m away)
                 (105, "E1", 500, 0, None))
    assert within_batch(rows, [None] * 6) == [None, 100, 100, None, 103, None]


def test_within_batch_keeps_stored_links_and_same_component() -> None:
    rows = cases((100, "E1", 0, 0, "C1"),
                 (101, "E1", 900, 5, "C1"),   # same component, far away: duplicate of 100
                 (102, "E1", 0, 0, None),     # already a duplicate of a stored case: stays so, never an original
                 (103, "E1", 5, 1, None))     # nearest original in the batch: 100 (102 is a duplicate)
    assert within_batch(rows, [None, None, 7, None]) == [None, 100, 7, 100]


def test_within_batch_respects_the_window_and_order_of_rows() -> None:
    rows = cases((100, "E1", 0, 30, None),    # reported after the next row
                 (101, "E1", 5, 0, None),     # earlier in time than 100, so 100 cannot be its original
                 (102, "E1", 5, 60 * 25, None))  # more than 24 h after both
    assert within_batch(rows, [None] * 3) == [None, None, None]


def test_trust_order_of_sources() -> None:
    assert [trust_of(s) for s in ("inspector", "dispatcher", "video", "hotline", "public")] == [2, 2, 2, 1, 0]
    assert trust_of("public", "registered") == 2  # a verified case is trusted, whatever its source
    assert trust_of("public", "reported") == 0


def test_stored_unverified_cases_never_absorb_more_trusted_reports() -> None:
    stored = cases((10, "E1", 0, 0, None, "public"), (11, "E1", 30, 0, None, "hotline"),
                   (12, "E1", 0, 0, "C1", "public"))
    reports = cases((0, "E1", 5, 5, None, "inspector"),  # 10 and 11 are less trusted: an original
                    (1, "E1", 5, 5, None, "hotline"),    # 11 (25 m); 10 is nearer but public
                    (2, "E1", 5, 5, None, "public"),     # the nearest, 10
                    (3, "E1", 0, 5, "C1", "video"),      # the same component, but a public case: original
                    (4, "E1", 0, 5, "C1", "public"))     # the same component: 12
    assert against_stored(reports, stored) == [None, 11, 10, None, 12]


def test_within_batch_an_unverified_row_never_absorbs_a_trusted_one() -> None:
    rows = cases((100, "E1", 0, 0, None, "public"),     # original
                 (101, "E1", 10, 0, None, "inspector"),  # 100 is public: an original
                 (102, "E1", 4, 0, None, "public"),     # the nearest, 100 (4 m; 101 is 6 m away)
                 (103, "E1", 4, 0, None, "hotline"),    # 101 (6 m); 100 is nearer but public
                 (104, "E1", 0, 0, "C1", "public"),     # 100 (0 m)
                 (105, "E1", 900, 1, "C1", "dispatcher"))  # same component as 104, but 104 is a duplicate
    assert within_batch(rows, [None] * 6) == [None, None, 100, 101, 100, None]
