"""Working-calendar deadlines against answers worked out by hand on a paper calendar.

Week used for plain cases: 2025-03-03 is a Monday, 03-07 a Friday, 03-08/09 the weekend, 03-10 the next
Monday; no holiday falls near it. Working periods are 08:30–12:00 (3.5 h) and 13:30–17:30 (4 h).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from spatial.errors import InvalidParameterError
from spatial.reference.calendar import TIME_UNITS, WorkingCalendar, moment_problem, utc_moment

SH = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    """A Shanghai wall time from ``YYYY-MM-DD HH:MM[:SS[.ffffff]]``."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture(scope="module")
def plain() -> WorkingCalendar:
    return WorkingCalendar()


@pytest.fixture(scope="module")
def cn() -> WorkingCalendar:
    return WorkingCalendar.from_csv()


@pytest.mark.parametrize(("start", "hours", "due"), [
    ("2025-03-03 09:00", 1, "2025-03-03 10:00"),  # plain morning
    ("2025-03-03 11:00", 2, "2025-03-03 14:30"),  # 1 h before lunch, 1 h after
    ("2025-03-07 16:00", 4, "2025-03-10 11:00"),  # Fri 1.5 h, weekend skipped, Mon 2.5 h
    ("2025-03-03 07:00", 3, "2025-03-03 11:30"),  # before opening: counts from 08:30
    ("2025-03-03 00:00", 1, "2025-03-03 09:30"),  # midnight of a working day
    ("2025-03-03 12:30", 1, "2025-03-03 14:30"),  # during lunch: counts from 13:30
    ("2025-03-03 18:00", 2, "2025-03-04 10:30"),  # after closing: next morning
    ("2025-03-08 10:00", 2, "2025-03-10 10:30"),  # Saturday: Monday 08:30 + 2 h
    ("2025-03-09 23:59", 1, "2025-03-10 09:30"),  # late Sunday
    ("2025-03-03 09:00", 40, "2025-03-10 11:30"),  # Mon 7 h + Tue–Fri 30 h + Mon 3 h
    ("2025-03-03 09:15:30.250000", 1, "2025-03-03 10:15:30.250000"),  # sub-minute precision kept
])
def test_working_hours(plain: WorkingCalendar, start: str, hours: int, due: str) -> None:
    assert plain.deadline(at(start), hours, "working_hours") == at(due)


@pytest.mark.parametrize(("start", "hours", "due"), [
    ("2025-03-03 08:30", 1, "2025-03-03 09:30"),  # exactly at opening
    ("2025-03-03 08:30", 3, "2025-03-03 11:30"),
    ("2025-03-03 10:00", 2, "2025-03-03 12:00"),  # lands on 12:00: stays, not 13:30
    ("2025-03-03 08:30", 7, "2025-03-03 17:00"),
    ("2025-03-03 13:30", 4, "2025-03-03 17:30"),  # lands on 17:30: stays, not next 08:30
    ("2025-03-07 13:30", 4, "2025-03-07 17:30"),  # Friday 17:30, not Monday
    ("2025-03-03 12:00", 1, "2025-03-03 14:30"),  # starting at 12:00 is starting at 13:30
    ("2025-03-03 13:30", 1, "2025-03-03 14:30"),
    ("2025-03-03 17:30", 1, "2025-03-04 09:30"),  # starting at 17:30 is starting next morning
    ("2025-03-07 17:30", 1, "2025-03-10 09:30"),
    ("2025-03-03 08:30", 8, "2025-03-04 09:00"),  # 7.5 h fill Monday, 0.5 h on Tuesday
    ("2025-03-03 16:30", 4, "2025-03-04 11:30"),  # 1 h today, 3 h tomorrow
    ("2025-03-03 17:00", 4, "2025-03-04 12:00"),  # 0.5 h today, 3.5 h tomorrow ends at 12:00
])
def test_working_hours_at_boundaries(plain: WorkingCalendar, start: str, hours: int, due: str) -> None:
    assert plain.deadline(at(start), hours, "working_hours") == at(due)


@pytest.mark.parametrize(("start", "days", "due"), [
    ("2025-03-03 10:00", 1, "2025-03-04 10:00"),  # same time next working day
    ("2025-03-07 10:00", 1, "2025-03-10 10:00"),  # Friday to Monday
    ("2025-03-06 15:00", 2, "2025-03-10 15:00"),  # Thursday, over the weekend
    ("2025-03-03 10:00", 10, "2025-03-17 10:00"),  # two full weeks
    ("2025-03-08 10:00", 1, "2025-03-10 17:30"),  # Saturday: Monday 08:30 + 7.5 h
    ("2025-03-09 10:00", 2, "2025-03-11 17:30"),  # Sunday: Monday and Tuesday in full
    ("2025-03-03 07:00", 1, "2025-03-03 17:30"),  # before opening: the whole of today
    ("2025-03-03 18:00", 1, "2025-03-04 17:30"),  # after closing: the whole of tomorrow
    ("2025-03-03 12:30", 1, "2025-03-04 12:00"),  # lunch: 4 h today + 3.5 h tomorrow, stays at 12:00
    ("2025-03-03 08:30", 5, "2025-03-07 17:30"),  # a full week ends Friday 17:30, not Monday 08:30
    ("2025-03-03 17:30", 1, "2025-03-04 17:30"),
])
def test_working_days(plain: WorkingCalendar, start: str, days: int, due: str) -> None:
    assert plain.deadline(at(start), days, "working_days") == at(due)


@pytest.mark.parametrize(("start", "hours", "due"), [
    ("2025-03-03 22:00", 4, "2025-03-04 02:00"),  # across midnight
    ("2025-03-07 20:00", 48, "2025-03-09 20:00"),  # across the weekend, no skipping
    ("2025-03-08 10:00", 1, "2025-03-08 11:00"),  # on a Saturday
    ("2025-03-03 11:30", 2, "2025-03-03 13:30"),  # through lunch
])
def test_clock_hours(plain: WorkingCalendar, start: str, hours: int, due: str) -> None:
    assert plain.deadline(at(start), hours, "clock_hours") == at(due)


@pytest.mark.parametrize(("start", "amount", "unit", "due"), [
    # 2025 National Day: Oct 1 (Wed) – Oct 8 (Wed) off; Oct 9 Thu and Oct 10 Fri are ordinary working days;
    # Sun Sep 28 and Sat Oct 11 are swapped working days.
    ("2025-09-30 10:00", 1, "working_days", "2025-10-09 10:00"),
    ("2025-09-30 10:00", 2, "working_days", "2025-10-10 10:00"),
    ("2025-09-30 10:00", 3, "working_days", "2025-10-11 10:00"),  # swapped working Saturday
    ("2025-09-30 16:00", 4, "working_hours", "2025-10-09 11:00"),  # 1.5 h on Sep 30, 2.5 h on Oct 9
    ("2025-10-03 10:00", 1, "working_hours", "2025-10-09 09:30"),  # reported during the holiday
    ("2025-09-26 16:00", 4, "working_hours", "2025-09-28 11:00"),  # Fri 1.5 h, Sat off, swapped Sun 2.5 h
    ("2025-09-27 09:00", 1, "working_days", "2025-09-28 17:30"),  # Saturday report, swapped Sunday
    # 2025 Spring Festival: Jan 28 – Feb 4 off, Sun Jan 26 and Sat Feb 8 worked.
    ("2025-01-24 17:00", 1, "working_hours", "2025-01-26 09:00"),  # Fri 0.5 h, swapped Sun 0.5 h
    ("2025-01-26 10:00", 1, "working_days", "2025-01-27 10:00"),
    ("2025-01-27 10:00", 1, "working_days", "2025-02-05 10:00"),
    ("2025-02-07 10:00", 1, "working_days", "2025-02-08 10:00"),  # Fri to swapped Sat
    # 2026 Spring Festival: Feb 15 – Feb 23 off, Sat Feb 14 and Sat Feb 28 worked.
    ("2026-02-13 10:00", 1, "working_days", "2026-02-14 10:00"),
    ("2026-02-13 10:00", 2, "working_days", "2026-02-24 10:00"),
    # Clock hours ignore holidays.
    ("2025-10-01 10:00", 24, "clock_hours", "2025-10-02 10:00"),
])
def test_holidays_and_swapped_days(cn: WorkingCalendar, start: str, amount: int, unit: str, due: str) -> None:
    assert cn.deadline(at(start), amount, unit) == at(due)


def test_holidays_given_directly() -> None:
    calendar = WorkingCalendar({date(2025, 3, 4): False, date(2025, 3, 8): True})
    assert calendar.deadline(at("2025-03-03 10:00"), 1, "working_days") == at("2025-03-05 10:00")
    assert calendar.deadline(at("2025-03-07 16:00"), 4, "working_hours") == at("2025-03-08 11:00")
    assert not calendar.is_working_day(date(2025, 3, 4))
    assert calendar.is_working_day(date(2025, 3, 8))
    assert not calendar.is_working_day(date(2025, 3, 9))
    assert calendar.is_working_day(date(2025, 3, 10))


@pytest.mark.parametrize(("start", "amount", "unit", "due"), [
    # 02:00Z is 10:00 in Shanghai (UTC+8, no daylight saving).
    (datetime(2025, 3, 3, 2, 0, tzinfo=UTC), 1, "working_days", "2025-03-04 10:00"),
    # Friday 23:00Z is Saturday 07:00 in Shanghai: a weekend report.
    (datetime(2025, 3, 7, 23, 0, tzinfo=UTC), 2, "working_hours", "2025-03-10 10:30"),
    (datetime(2025, 3, 7, 23, 0, tzinfo=UTC), 2, "clock_hours", "2025-03-08 09:00"),
    # Sunday 17:00 in New York (EST, UTC-5) is Monday 06:00 in Shanghai: before opening.
    (datetime(2025, 3, 2, 17, 0, tzinfo=NEW_YORK), 1, "working_hours", "2025-03-03 09:30"),
])
def test_other_zones_are_converted(plain: WorkingCalendar, start: datetime, amount: int, unit: str,
                                   due: str) -> None:
    result = plain.deadline(start, amount, unit)
    assert result == at(due)
    assert result.tzinfo == SH
    assert result.utcoffset() == timedelta(hours=8)


def test_result_is_in_calendar_zone(plain: WorkingCalendar) -> None:
    result = plain.deadline(at("2025-03-03 10:00"), 1, "working_hours")
    assert (result.year, result.month, result.day, result.hour, result.minute) == (2025, 3, 3, 11, 0)
    assert result.tzinfo == SH


@pytest.mark.parametrize("unit", TIME_UNITS)
def test_naive_start_refused(plain: WorkingCalendar, unit: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        plain.deadline(datetime(2025, 3, 3, 10, 0), 1, unit)


@pytest.mark.parametrize("unit", ["minutes", "hours", "Working_Hours", ""])
def test_bad_unit_refused(plain: WorkingCalendar, unit: str) -> None:
    with pytest.raises(ValueError, match="unit"):
        plain.deadline(at("2025-03-03 10:00"), 1, unit)


@pytest.mark.parametrize("amount", [0, -1])
@pytest.mark.parametrize("unit", TIME_UNITS)
def test_non_positive_amount_refused(plain: WorkingCalendar, amount: int, unit: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        plain.deadline(at("2025-03-03 10:00"), amount, unit)


@pytest.mark.parametrize(("start", "end", "seconds"), [
    ("2025-03-03 10:00", "2025-03-03 11:00", 3600),
    ("2025-03-03 11:00", "2025-03-03 14:30", 7200),  # lunch does not count
    ("2025-03-07 16:00", "2025-03-10 11:00", 14400),  # 1.5 h Friday + 2.5 h Monday
    ("2025-03-08 10:00", "2025-03-09 15:00", 0),  # weekend
    ("2025-03-03 07:00", "2025-03-03 08:30", 0),  # before opening
    ("2025-03-03 12:10", "2025-03-03 13:20", 0),  # inside lunch
    ("2025-03-03 17:30", "2025-03-04 08:30", 0),  # overnight
    ("2025-03-03 08:30", "2025-03-04 08:30", 27000),  # one full working day
    ("2025-03-03 00:00", "2025-03-10 00:00", 135000),  # one full week: 5 × 7.5 h
    ("2025-03-03 06:00", "2025-03-03 20:00", 27000),
    ("2025-03-03 10:00", "2025-03-03 10:00:00.500000", 0.5),
    ("2025-03-03 10:00", "2025-03-03 10:00", 0),
    ("2025-03-03 11:00", "2025-03-03 10:00", -3600),  # end before start
])
def test_working_seconds_between(plain: WorkingCalendar, start: str, end: str, seconds: float) -> None:
    assert plain.working_seconds_between(at(start), at(end)) == seconds


@pytest.mark.parametrize(("start", "end", "seconds"), [
    ("2025-09-30 10:00", "2025-10-10 10:00", 54000),  # Oct 1–8 off: two working days
    ("2025-09-26 16:00", "2025-09-28 11:00", 14400),  # over a swapped working Sunday
    ("2025-10-01 00:00", "2025-10-09 00:00", 0),  # the whole holiday
])
def test_working_seconds_between_holidays(cn: WorkingCalendar, start: str, end: str, seconds: float) -> None:
    assert cn.working_seconds_between(at(start), at(end)) == seconds


def test_working_seconds_between_converts_zones(plain: WorkingCalendar) -> None:
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert plain.working_seconds_between(start, at("2025-03-03 11:00")) == 3600


def test_working_seconds_between_refuses_naive(plain: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="time zone"):
        plain.working_seconds_between(datetime(2025, 3, 3, 10, 0), at("2025-03-03 11:00"))


@pytest.mark.parametrize("start", [
    "2025-03-03 09:17", "2025-03-07 16:45", "2025-03-08 03:00", "2025-09-30 11:59", "2025-12-31 17:29",
])
@pytest.mark.parametrize(("amount", "unit", "seconds"), [
    (1, "working_hours", 3600), (9, "working_hours", 32400), (3, "working_days", 81000),
    (250, "working_days", 6750000),
])
def test_deadline_uses_exactly_the_limit(cn: WorkingCalendar, start: str, amount: int, unit: str,
                                         seconds: int) -> None:
    assert cn.working_seconds_between(at(start), cn.deadline(at(start), amount, unit)) == seconds


def test_far_dates_and_long_limits(plain: WorkingCalendar) -> None:
    # 2030-01-07 is a Monday; 52 working weeks later is Monday 2031-01-06.
    assert plain.deadline(at("2030-01-07 10:00"), 260, "working_days") == at("2031-01-06 10:00")
    assert plain.deadline(at("1999-12-31 10:00"), 1, "working_days") == at("2000-01-03 10:00")


def test_packaged_holidays_load(cn: WorkingCalendar) -> None:
    assert not cn.is_working_day(date(2025, 10, 1))
    assert not cn.is_working_day(date(2025, 10, 8))
    assert cn.is_working_day(date(2025, 9, 28))  # Sunday, swapped working day
    assert cn.is_working_day(date(2025, 10, 11))  # Saturday, swapped working day
    assert cn.is_working_day(date(2025, 10, 9))
    assert not cn.is_working_day(date(2025, 9, 27))  # ordinary Saturday
    assert not cn.is_working_day(date(2026, 2, 17))  # 2026 Spring Festival
    assert cn.is_working_day(date(2026, 1, 4))  # Sunday, swapped for New Year


def test_packaged_file_is_consistent() -> None:
    path = Path(__file__).parents[2] / "spatial" / "reference" / "data" / "holidays_cn.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "day,is_workday,name"
    rows = [line.split(",") for line in lines[1:]]
    days = [date.fromisoformat(day) for day, _, _ in rows]
    assert days == sorted(set(days))
    assert {flag for _, flag, _ in rows} == {"true", "false"}
    for day, (_, flag, name) in zip(days, rows, strict=True):
        assert name
        if flag == "true":
            assert day.weekday() >= 5, f"{day} is a swapped working day but not a weekend day"
    swapped_2025 = {d for d, (_, f, _) in zip(days, rows, strict=True) if f == "true" and d.year == 2025}
    assert swapped_2025 == {date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28),
                            date(2025, 10, 11)}


def test_from_csv_reads_a_given_file(tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text("day,is_workday,name\n2025-03-04,false,test\n2025-03-08,TRUE,swap\n", encoding="utf-8")
    calendar = WorkingCalendar.from_csv(path)
    assert not calendar.is_working_day(date(2025, 3, 4))
    assert calendar.is_working_day(date(2025, 3, 8))


@pytest.mark.parametrize(("row", "problem"), [
    ("2025-13-01,false,x", "ISO date"),
    ("2025-03-04,maybe,x", "is_workday"),
    (",false,x", "ISO date"),
])
def test_from_csv_refuses_bad_rows(tmp_path: Path, row: str, problem: str) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text(f"day,is_workday,name\n2025-03-05,false,ok\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"line 3: .*{problem}"):
        WorkingCalendar.from_csv(path)


@pytest.mark.parametrize(("moment", "inside"), [
    ("0001-01-01T00:00:00+05:00", False),  # before year 1 in UTC: no datetime can hold it
    ("0001-01-01T00:00:00", False),  # local (+08:00) time, the same
    ("0001-12-31T00:00:00-05:00", False),  # convertible, but a window or deadline from it is not
    ("0002-01-01T00:00:00+00:00", True),
    ("2025-05-01T08:30:00+08:00", True),
    ("9998-12-31T00:00:00+00:00", True),
    ("9999-12-31T23:59:59-05:00", False),  # after year 9999 in UTC
])
def test_moments_at_the_calendar_edges(moment: str, inside: bool) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    parsed = datetime.fromisoformat(moment)
    assert (moment_problem(parsed, shanghai) is None) is inside
    if inside:
        assert utc_moment(parsed, "since", shanghai) == parsed.astimezone(UTC)
    else:
        with pytest.raises(InvalidParameterError, match="since"):
            utc_moment(parsed, "since", shanghai)
