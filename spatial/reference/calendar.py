"""Working calendar for case deadlines: office hours, weekends, public holidays and swapped working days.

Working time is 08:30–12:00 and 13:30–17:30, Monday to Friday, in the calendar's local time (Asia/Shanghai
unless told otherwise), so a working day holds 7.5 working hours. A configurable table departs from that
week: a date flagged ``False`` is a holiday, a date flagged ``True`` is a swapped working day (调休, usually
a Saturday or Sunday worked to lengthen a holiday). The packaged table ``spatial/reference/data/holidays_cn.csv``
copies the PRC public holidays and swapped working days for 2025 and 2026 from the State Council General
Office notices (国务院办公厅关于节假日安排的通知).

Rule choices, as the product spec has them:

* ``clock_hours`` run non-stop: the deadline is the start plus N elapsed hours, holidays included.
* ``working_hours`` count only inside working periods. A start outside working time (before 08:30, at
  lunch, after 17:30, on a weekend or holiday) starts counting at the next working moment.
* ``working_days`` are N × 7.5 working hours on the same working clock, not "the same time N calendar
  working days later" with its own rounding. So Monday 10:00 + 1 working day is Tuesday 10:00, and a report
  made on a Saturday counts from Monday 08:30, which puts 1 working day at Monday 17:30.
* A deadline that falls exactly on the end of a working period (12:00 or 17:30) stays there; it is never
  moved to the start of the next period, because both moments leave the same working time to the handler.

Arithmetic happens on local wall-clock time. That is exact for Asia/Shanghai, which has kept UTC+8 without
daylight saving since 1991; in a zone with daylight saving the working periods still follow the wall clock.
``clock_hours`` alone are added on the absolute (UTC) time line.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from spatial.errors import InvalidParameterError

# The city's time: a time without offset in a request or a file is this, and case numbers count its days.
LOCAL = ZoneInfo("Asia/Shanghai")
TIME_UNITS = ("working_hours", "working_days", "clock_hours")

# Integer microseconds throughout, so that sub-second starts survive without float rounding.
_US = 1_000_000
_HOUR = 3600 * _US
_AM_START = (8 * 3600 + 30 * 60) * _US
_AM_END = 12 * _HOUR
_PM_START = (13 * 3600 + 30 * 60) * _US
_PM_END = (17 * 3600 + 30 * 60) * _US
_AM_LEN = _AM_END - _AM_START
_DAY_LEN = _AM_LEN + _PM_END - _PM_START  # 7.5 hours
_MIDNIGHTS_KEPT = 4096  # about ten years of result days; beyond that the cache starts over
_MARGIN_DAYS = 366  # each rebuild of the working-day index covers a spare year, so rebuilds stay rare


def _worked(us: int) -> int:
    """Working microseconds used up on a working day by wall time ``us`` (microseconds after midnight)."""
    if us <= _AM_START:
        return 0
    if us <= _AM_END:
        return us - _AM_START
    if us <= _PM_START:
        return _AM_LEN
    if us <= _PM_END:
        return _AM_LEN + us - _PM_START
    return _DAY_LEN


def _wall(worked: int) -> int:
    """Wall time (microseconds after midnight) at which ``worked`` (in (0, 7.5 h]) working time is used up."""
    # "<=" keeps a deadline that lands on 12:00 at 12:00 rather than at 13:30.
    if worked <= _AM_LEN:
        return _AM_START + worked
    return _PM_START + worked - _AM_LEN


class WorkingCalendar:
    """Working days and hours in one time zone, with holidays and swapped working days.

    Args:
        holidays: Maps a date to whether it is a working day: ``False`` marks a holiday, ``True`` a swapped
            working day. Dates not listed follow the Monday–Friday week.
        tz: IANA name of the zone whose wall clock the working periods follow.
    """

    def __init__(self, holidays: Mapping[date, bool] | None = None, tz: str = "Asia/Shanghai") -> None:
        self._tz = ZoneInfo(tz)
        # Keyed by ordinal because the hot path already has ordinals and never needs a date object.
        self._flags: dict[int, bool] = {d.toordinal(): bool(w) for d, w in (holidays or {}).items()}
        # Sorted ordinals of the working days in [lo, hi): the per-day status cache that lets deadline()
        # jump over any number of days with one bisect. Swapped in as one tuple so readers never see a
        # half-built index.
        self._index: tuple[int, int, list[int]] = (0, 0, [])
        # Building an aware datetime from parts costs more than adding to a cached midnight.
        self._midnights: dict[int, datetime] = {}

    @classmethod
    def from_csv(cls, path: Path | None = None) -> WorkingCalendar:
        """Build an Asia/Shanghai calendar from a ``day,is_workday,name`` CSV file.

        Args:
            path: The file to read; None reads the packaged ``spatial/reference/data/holidays_cn.csv``.

        Returns:
            The calendar with every row of the file as a holiday or swapped working day.

        Raises:
            ValueError: A row has no ISO date or an ``is_workday`` other than ``true``/``false``.
        """
        if path is None:
            name = "holidays_cn.csv"
            text = resources.files("spatial.reference.data").joinpath(name).read_text(encoding="utf-8")
        else:
            name, text = str(path), path.read_text(encoding="utf-8-sig")
        holidays: dict[date, bool] = {}
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            try:
                day = date.fromisoformat((row.get("day") or "").strip())
            except ValueError as exc:
                raise ValueError(f"{name} line {line}: 'day' is not an ISO date") from exc
            flag = (row.get("is_workday") or "").strip().lower()
            if flag not in ("true", "false"):
                raise ValueError(f"{name} line {line}: 'is_workday' is {flag!r}, expected true or false")
            holidays[day] = flag == "true"
        return cls(holidays)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` has working hours: a weekday that is no holiday, or a swapped working day."""
        return self._flags.get(day.toordinal(), day.weekday() < 5)

    def deadline(self, start: datetime, amount: int, unit: str) -> datetime:
        """The moment a time limit of ``amount`` ``unit`` that starts at ``start`` runs out.

        Args:
            start: When the clock starts; must be timezone-aware, in any zone.
            amount: How many units; must be positive.
            unit: One of ``TIME_UNITS``.

        Returns:
            The deadline as an aware datetime in the calendar's zone.

        Raises:
            ValueError: ``start`` is naive, ``amount`` is not positive or ``unit`` is unknown.
        """
        if amount <= 0:
            raise ValueError(f"amount must be positive, got {amount!r}")
        if unit == "working_hours":
            need = amount * _HOUR
        elif unit == "working_days":
            need = amount * _DAY_LEN
        elif unit == "clock_hours":
            if start.tzinfo is None or start.utcoffset() is None:
                raise _naive(start)
            return (start.astimezone(UTC) + timedelta(hours=amount)).astimezone(self._tz)
        else:
            raise ValueError(f"unknown time unit {unit!r}, expected one of {TIME_UNITS}")
        return self._after(start, need)

    def after_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of working time after ``start`` (``start`` itself, in the calendar's zone, for
        none): how a deadline moves by the working time a case spent suspended (spatial/cases/actions.py)."""
        need = round(seconds * _US)
        if need <= 0:
            return start.astimezone(self._tz)
        return self._after(start, need)

    def _after(self, start: datetime, need: int) -> datetime:
        """The moment ``need`` (> 0) working microseconds after ``start``."""
        ordinal, us, weekday = self._local(start)
        used = _worked(us) if self._flags.get(ordinal, weekday < 5) else _DAY_LEN
        if used + need <= _DAY_LEN:
            return self._at(ordinal, _wall(used + need))
        rest = need - (_DAY_LEN - used)
        days = -(-rest // _DAY_LEN)  # working days still to open, the last one only partly used
        return self._at(self._nth_working_after(ordinal, days), _wall(rest - (days - 1) * _DAY_LEN))

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Working time from ``start`` to ``end``, in seconds; negative when ``end`` comes first.

        Args:
            start: The earlier moment, timezone-aware.
            end: The later moment, timezone-aware.

        Returns:
            Seconds of working time between the two moments; time outside working periods does not count.

        Raises:
            ValueError: Either moment is naive.
        """
        first, second = self._local(start), self._local(end)
        low, high = min(first[0], second[0]), max(first[0], second[0])
        lo, hi, work = self._index
        if low < lo or high >= hi:
            self._extend(low, high)
            lo, hi, work = self._index
        return (self._elapsed(work, *second) - self._elapsed(work, *first)) / _US

    def _local(self, moment: datetime) -> tuple[int, int, int]:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise _naive(moment)
        local = moment.astimezone(self._tz)
        us = ((local.hour * 60 + local.minute) * 60 + local.second) * _US + local.microsecond
        return local.toordinal(), us, local.weekday()

    def _at(self, ordinal: int, us: int) -> datetime:
        midnight = self._midnights.get(ordinal)
        if midnight is None:
            if len(self._midnights) >= _MIDNIGHTS_KEPT:
                self._midnights.clear()
            midnight = datetime.fromordinal(ordinal).replace(tzinfo=self._tz)
            self._midnights[ordinal] = midnight
        # Aware datetime + timedelta is wall-clock arithmetic, which is what working periods are defined in.
        return midnight + timedelta(microseconds=us)

    def _elapsed(self, work: list[int], ordinal: int, us: int, weekday: int) -> int:
        """Working microseconds from the start of ``work`` to a local moment; only differences matter."""
        today = _worked(us) if self._flags.get(ordinal, weekday < 5) else 0
        return bisect_left(work, ordinal) * _DAY_LEN + today

    def _nth_working_after(self, ordinal: int, n: int) -> int:
        """Ordinal of the ``n``-th working day after ``ordinal`` (``n`` >= 1)."""
        while True:
            lo, hi, work = self._index
            if lo <= ordinal < hi:
                i = bisect_right(work, ordinal) + n - 1
                if i < len(work):
                    return work[i]
            # Rough guess of the span needed; the loop widens it again if long holidays eat into it.
            self._extend(ordinal, max(hi, ordinal) + 2 * n + 14)

    def _extend(self, first: int, last: int) -> None:
        """Rebuild the working-day index so that it covers ordinals ``first`` to ``last`` inclusive."""
        lo, hi, _ = self._index
        new_lo = max(1, first - _MARGIN_DAYS if hi == 0 else min(lo, first - _MARGIN_DAYS))
        new_hi = max(hi, last + _MARGIN_DAYS)
        flags = self._flags
        # 0001-01-01 (ordinal 1) is a Monday, so ordinal % 7 is 6 on Saturdays and 0 on Sundays.
        work = [o for o in range(new_lo, new_hi) if flags.get(o, 0 < o % 7 < 6)]
        self._index = (new_lo, new_hi, work)


# Moments a request may name: a year inside Python's years 1–9999 on either side, so that converting it to
# UTC or local time, and the 90-day windows and deadlines counted from it, stay inside the calendar.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def moment_problem(moment: datetime, local: tzinfo) -> str | None:
    """Why ``moment`` (no offset: ``local`` time) lies outside the moments a request may name
    (``EARLIEST`` – ``LATEST``; ISO 8601 allows year 1 with +14:00, which no UTC datetime can hold), or None."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=local)
    try:
        inside = EARLIEST <= aware.astimezone(UTC) <= LATEST
    except OverflowError:
        inside = False
    return None if inside else f"{moment.isoformat()} lies outside the years 0002–9998"


def utc_moment(moment: datetime, parameter: str, local: tzinfo) -> datetime:
    """``moment`` in UTC (a time without offset is ``local`` time); InvalidParameterError naming
    ``parameter`` for a moment at the edges of the calendar (``moment_problem``)."""
    problem = moment_problem(moment, local)
    if problem:
        raise InvalidParameterError(f"{parameter}: {problem}", parameter=parameter)
    return (moment if moment.tzinfo else moment.replace(tzinfo=local)).astimezone(UTC)


def _naive(moment: datetime) -> ValueError:
    return ValueError(f"{moment.isoformat()} has no time zone; the calendar needs an aware datetime")
