"""Temporal expressions in free text, turned into UTC date ranges in the user's time zone.

Episodic memories are searched by time ("what did I do last week?"), and "last week" means the
user's week: every day boundary is local midnight in the user's zone, converted to UTC only at the
end, so a DST day keeps its real length (23 or 25 hours). Ranges are half-open ``[start, end)`` so
adjacent ranges never overlap. Weeks run Monday to Sunday.

How `find_temporal_expression` chooses among several expressions in one text:

1. Overlapping matches: the longest wins ("from May 1 to May 7" over "May 1", "the day before
   yesterday" over "yesterday").
2. Then the most explicit form: a date, month, year or range that names a year (rank 3) beats a
   calendar name without a year such as "May 8", "in March" or "Friday" (rank 2), which beats a
   relative phrase such as "today", "last week" or "3 days ago" (rank 1).
3. Then the narrowest range, then the one nearest the end of the text (in a conversation, the
   latest message is the question being asked).

`parse_temporal_expression` applies rule 1 and then takes the first expression in the text.
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DateRange", "find_temporal_expression", "parse_temporal_expression"]


@dataclass(frozen=True)
class DateRange:
    """A half-open UTC interval ``[start, end)`` and the text it was read from."""

    start: datetime
    end: datetime
    expression: str


Span = tuple[date, date]  # local calendar days, end exclusive


@dataclass(frozen=True)
class _Point:
    """A calendar date named in the text; parts the text left out are None."""

    year: int | None
    month: int | None
    day: int | None


# English names spelled out: calendar.month_name follows the process locale.
_NUMBER_WORDS = "one two three four five six seven eight nine ten eleven twelve".split()
_NUMBERS = {"a": 1, "an": 1} | {word: n for n, word in enumerate(_NUMBER_WORDS, 1)}
_MONTHS = {abbr: n for n, abbr in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_STEP = {"last": -1, "previous": -1, "this": 0, "next": 1}

# Building blocks. Counts are capped at four digits so no date arithmetic can explode.
_COUNT = r"(?P<n>\d{1,4}|" + "|".join(_NUMBER_WORDS) + ")"
_NUM = r"(?P<n>\d{1,4}|an?|" + "|".join(_NUMBER_WORDS) + ")"  # "a week ago"; "the last a week" is not English
_UNIT = r"(?P<unit>day|week|month|year)s?\b"
_WD_NAMES = "|".join(_WEEKDAYS)
_WD_PREFIX = rf"(?:(?:{_WD_NAMES}),?\s+)?"  # "Monday, May 8" is one date, not two expressions
_MON = (
    r"(?P<mon>(?:january|february|march|april|may|june|july|august|september|october|november|december)\b"
    r"|(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b(?:\.(?=\s*\d))?)"
)
_DAY = r"(?P<d>[0-3]?\d)(?P<ord>st|nd|rd|th)?\b"
_YEAR = r"(?P<y>(?:1[89]|2[01])\d\d)(?!\d)"  # 1800-2199: other four-digit numbers are rarely years

# Single dates, months and years. Each also parses a range endpoint (see `_parse_point`).
_ISO = r"(?<!\d)(?P<y>\d{4})[-/](?P<m>\d\d?)[-/](?P<d>\d\d?)(?!\d)"
_US = r"(?<!\d)(?P<m>\d\d?)/(?P<d>\d\d?)/(?P<y>\d{4})(?!\d)"  # numeric day-month is read US-style
_DMY = rf"\b{_WD_PREFIX}(?:the\s+)?{_DAY}(?P<of>\s+of)?\s+{_MON}(?:,?\s+{_YEAR})?"
_MDY = rf"\b{_WD_PREFIX}{_MON}\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?"
_MY = rf"\b{_MON}(?:\s+of)?,?\s+{_YEAR}"
_MONTH_ONLY = rf"\b{_MON}"
_YEAR_ONLY = rf"\b{_YEAR}"
_DAY_ONLY = rf"\b(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?"  # "May 1-7": the 7 borrows the month

_POINT_FORMS = [_ISO, _US, _DMY, _MDY, _MY, _MONTH_ONLY, _YEAR_ONLY, _DAY_ONLY]
_POINT_PARSERS = [re.compile(form, re.I) for form in _POINT_FORMS]


def _unnamed(pattern: str) -> str:
    """Drop group names so the same form can appear twice (both ends) in the range pattern."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


_ENDPOINT = "|".join(_unnamed(form) for form in _POINT_FORMS)

_RANGE = re.compile(
    rf"(?:\b(?P<kw>from|between)\s+)?(?P<a>{_ENDPOINT})"
    rf"(?P<sep>\s+(?:to|until|till|through|thru|and)\s+|\s*[-\u2013\u2014]\s*)(?P<b>{_ENDPOINT})",
    re.I,
)
_SIMPLE_DAY = re.compile(
    r"\b(?:(?:the\s+)?day\s+before\s+yesterday|today|tonight|this\s+(?:morning|afternoon|evening)"
    r"|yesterday|last\s+night|tomorrow)\b",
    re.I,
)
_AGO = re.compile(rf"\b{_NUM}\s+{_UNIT}\s+(?:ago|back)\b", re.I)
_ROLLING = re.compile(
    rf"\b(?:(?:in|over|during|within|for)\s+)?(?:the\s+)?(?:last|past|previous)\s+{_COUNT}\s+{_UNIT}", re.I
)
# Without a count, "last week" is the calendar week; "in the last week" / "past week" are rolling.
_ROLLING_ONE = re.compile(
    r"\b(?:(?:in|over|during|within|for)\s+the\s+(?:last|past)|(?:the\s+)?past)\s+(?P<unit>day|week|month|year)\b",
    re.I,
)
_PERIOD = re.compile(r"\b(?P<rel>last|this|next|previous|(?:this\s+)?past)\s+(?P<what>weekend|week|month|year)\b", re.I)
_WEEKDAY = re.compile(
    rf"\b(?:(?P<rel>last|this|next|previous|on)\s+)?(?P<wd>{_WD_NAMES})\b"
    r"(?:\s+(?:of\s+)?(?P<wk>last|this|next|previous)\s+week\b)?",
    re.I,
)
# A bare month name needs a preposition: "I may go" and "we march on" are not dates.
_BARE_MONTH = re.compile(
    rf"\b(?P<pre>in|during|throughout|since|last|this|early|late|mid)[-\s]+(?:(?:early|late|mid)[-\s]+)?{_MON}"
    r"(?!,?\s+(?:of\s+|the\s+)?\d)",
    re.I,
)
_BARE_YEAR = re.compile(rf"\b(?P<pre>in|during|throughout|since|year)\s+{_YEAR}(?![-/]\d)", re.I)
_SINCE_BEFORE = re.compile(r"\bsince\s+$", re.I)
_HAS_YEAR = re.compile(r"(?<!\d)(?:1[89]|2[01])\d\d(?!\d)")
_DIGIT = re.compile(r"\d")


# Local calendar arithmetic. Everything stays in dates until the very end (see module docstring).


def _day(d: date) -> Span:
    return d, d + timedelta(days=1)


def _week(d: date) -> Span:
    monday = d - timedelta(days=d.weekday())
    return monday, monday + timedelta(days=7)


def _month(year: int, month: int) -> Span:
    start = date(year, month, 1)
    return start, _add_months(start, 1)


def _year(year: int) -> Span:
    return date(year, 1, 1), date(year + 1, 1, 1)


def _add_months(d: date, n: int) -> date:
    """Shift by calendar months, clamping the day: a month before 31 March is 29 February in a leap year."""
    year, index = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(year, index + 1, min(d.day, calendar.monthrange(year, index + 1)[1]))


def _shift(d: date, unit: str, n: int) -> date:
    if unit == "day":
        return d + timedelta(days=n)
    if unit == "week":
        return d + timedelta(weeks=n)
    return _add_months(d, n if unit == "month" else 12 * n)


def _containing(d: date, unit: str) -> Span:
    """The whole day, Monday-Sunday week, calendar month or calendar year around `d`."""
    if unit == "day":
        return _day(d)
    if unit == "week":
        return _week(d)
    return _month(d.year, d.month) if unit == "month" else _year(d.year)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _recent_year(month: int, day: int | None, today: date) -> int:
    """The year of the latest such date (or month start) not after today; 8 years back covers 29 Feb."""
    for year in range(today.year, today.year - 9, -1):
        try:
            start = date(year, month, day or 1)
        except ValueError:
            continue
        if start <= today:
            return year
    raise ValueError(f"no date {month}/{day}")


# Resolvers: a match and the user's local today in, a local span out (None or ValueError = not a date).


def _simple_day(m: re.Match[str], today: date) -> Span:
    word = " ".join(m[0].lower().split())
    offset = {"yesterday": -1, "last night": -1, "tomorrow": 1}.get(word, -2 if "before" in word else 0)
    return _day(today + timedelta(days=offset))


def _ago(m: re.Match[str], today: date) -> Span:
    unit = m["unit"].lower()
    return _containing(_shift(today, unit, -_count(m["n"])), unit)


def _rolling(m: re.Match[str], today: date) -> Span:
    """From the same local day N units back through the end of today: now - N units, widened to days."""
    count = _count(m["n"]) if "n" in m.groupdict() else 1
    return _shift(today, m["unit"].lower(), -count), today + timedelta(days=1)


def _period(m: re.Match[str], today: date) -> Span | None:
    rel, what = m["rel"].lower(), m["what"].lower()
    if what == "weekend":
        # "this past weekend" is the latest weekend that has begun.
        step = (0 if today.weekday() >= 5 else -1) if rel.endswith("past") else _STEP[rel]
        monday = _week(_shift(today, "week", step))[0]
        return monday + timedelta(days=5), monday + timedelta(days=7)
    if rel.endswith("past"):
        return None  # "past week" is the rolling window (_ROLLING_ONE)
    return _containing(_shift(today, what, _STEP[rel]), what)


def _weekday(m: re.Match[str], today: date) -> Span:
    wd, rel = _WEEKDAYS.index(m["wd"].lower()), (m["rel"] or "on").lower()
    if m["wk"]:  # "Friday last week"
        return _day(_week(_shift(today, "week", _STEP[m["wk"].lower()]))[0] + timedelta(days=wd))
    if rel == "this":  # that day of the current week, even if it is still ahead
        return _day(_week(today)[0] + timedelta(days=wd))
    if rel == "next":
        return _day(today + timedelta(days=(wd - today.weekday()) % 7 or 7))
    back = (today.weekday() - wd) % 7
    if rel in ("last", "previous"):
        back = back or 7  # strictly before today
    return _day(today - timedelta(days=back))


def _point(m: re.Match[str]) -> _Point | None:
    g = m.groupdict()
    mon = g.get("mon")
    bare = not (g.get("y") or g.get("ord") or g.get("of"))
    if mon == "may" and g.get("d") and bare and m.start("d") < m.start("mon"):
        return None  # "at 5 may be late": a lowercase modal verb after a number, not 5 May
    month = _MONTHS[mon[:3].lower()] if mon else int(g["m"]) if g.get("m") else None
    return _Point(int(g["y"]) if g.get("y") else None, month, int(g["d"]) if g.get("d") else None)


def _point_span(p: _Point, today: date) -> Span:
    if p.month is None:
        if p.day is not None or p.year is None:
            raise ValueError("a day number alone is not a date")
        return _year(p.year)
    year = p.year if p.year is not None else _recent_year(p.month, p.day, today)
    return _month(year, p.month) if p.day is None else _day(date(year, p.month, p.day))


def _explicit(m: re.Match[str], today: date) -> Span | None:
    p = _point(m)
    return None if p is None else _point_span(p, today)


def _bare_month(m: re.Match[str], today: date) -> Span | None:
    pre, month = m["pre"].lower(), _MONTHS[m["mon"][:3].lower()]
    if m["mon"] == "may" and pre not in ("in", "during", "throughout", "since"):
        return None  # "this may take a while"
    if pre == "this":
        return _month(today.year, month)
    latest = month < today.month if pre == "last" else month <= today.month
    return _month(today.year if latest else today.year - 1, month)


def _bare_year(m: re.Match[str], today: date) -> Span:
    return _year(int(m["y"]))


def _parse_point(text: str) -> _Point | None:
    for parser in _POINT_PARSERS:
        if match := parser.fullmatch(text):
            return _point(match)
    return None


def _key(p: _Point) -> tuple[int, int]:
    return p.month or 1, p.day or 1


def _range(m: re.Match[str], today: date) -> Span | None:
    """Both ends inclusive as whole days (or months/years); missing years come from the other end."""
    keyword = (m["kw"] or "").lower()
    if m["sep"].strip().lower() == "and" and keyword != "between":
        return None  # "on May 1 and May 7" names two days, not a range
    if not keyword and not (_DIGIT.search(m["a"]) and _DIGIT.search(m["b"])):
        return None  # "march to may" without from/between is too likely to be prose
    a, b = _parse_point(m["a"]), _parse_point(m["b"])
    if a is None or b is None:
        return None
    if a.month is None and a.day is not None:  # "between the 1st and the 7th of May"
        a = replace(a, month=b.month if b.day is not None else None)
    if b.month is None and b.day is not None:  # "May 1-7"
        b = replace(b, month=a.month if a.day is not None else None)
    if a.year is None and b.year is not None:
        a = replace(a, year=b.year - (_key(a) > _key(b)))
    if a.year is None and a.month is not None:
        a = replace(a, year=_recent_year(a.month, a.day, today))
    if b.year is None and a.year is not None:
        b = replace(b, year=a.year + (_key(b) < _key(a)))
    (a_start, a_end), (b_start, b_end) = _point_span(a, today), _point_span(b, today)
    return min(a_start, b_start), max(a_end, b_end)


_Resolver = Callable[[re.Match[str], date], Span | None]
# (pattern, resolver, rank); calendar forms (rank 2) move up to 3 when the match names a year.
_RULES: list[tuple[re.Pattern[str], _Resolver, int]] = [
    (_SIMPLE_DAY, _simple_day, 1),
    (_AGO, _ago, 1),
    (_ROLLING, _rolling, 1),
    (_ROLLING_ONE, _rolling, 1),
    (_PERIOD, _period, 1),
    (_WEEKDAY, _weekday, 2),
    *((re.compile(form, re.I), _explicit, 2) for form in (_ISO, _US, _DMY, _MDY, _MY)),
    (_BARE_MONTH, _bare_month, 2),
    (_BARE_YEAR, _bare_year, 2),
    (_RANGE, _range, 2),
]


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    rank: int
    found: DateRange


def _to_utc(d: date, zone: ZoneInfo) -> datetime:
    # A midnight skipped by DST maps to the instant the day began; a repeated one to its first instant.
    return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)


def _candidates(text: str, now: datetime, tz: str) -> list[_Candidate]:
    """All non-overlapping expressions in `text` (longest wins an overlap), in text order."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as 'Europe/Paris'") from None
    if not text:
        return []
    today = now.astimezone(zone).date()
    found: list[_Candidate] = []
    for pattern, resolve, rank in _RULES:
        for m in pattern.finditer(text):
            start = m.start()
            since = _SINCE_BEFORE.search(text, max(0, start - 16), start)
            try:
                span = resolve(m, today)
                if span is None:
                    continue
                if since or m[0][:5].lower() == "since":
                    span = span[0], max(span[1], today + timedelta(days=1))  # "since May 1": through today
                    start = since.start() if since else start
                result = DateRange(_to_utc(span[0], zone), _to_utc(span[1], zone), text[start : m.end()])
            except (ValueError, OverflowError):
                continue  # 30 February, or arithmetic past the calendar's ends: not a date
            found.append(_Candidate(start, m.end(), rank + (rank == 2 and bool(_HAS_YEAR.search(m[0]))), result))
    chosen: list[_Candidate] = []  # kept sorted by start; bisect keeps long conversations linear-ish
    starts: list[int] = []
    for c in sorted(found, key=lambda c: (c.start - c.end, -c.rank, c.start)):
        i = bisect.bisect_right(starts, c.start)
        if (i and chosen[i - 1].end > c.start) or (i < len(chosen) and chosen[i].start < c.end):
            continue
        starts.insert(i, c.start)
        chosen.insert(i, c)
    return chosen


def parse_temporal_expression(text: str, *, now: datetime, tz: str = "UTC") -> DateRange | None:
    """Interpret `text` as a whole (or the first temporal expression found in it).

    Raises ValueError only for a naive `now` or an unknown `tz`; anything else unreadable is None.
    """
    candidates = _candidates(text, now, tz)
    return candidates[0].found if candidates else None


def find_temporal_expression(text: str, *, now: datetime, tz: str = "UTC") -> DateRange | None:
    """Scan free text (e.g. a conversation) for the most specific temporal expression and return its range, or None.

    "Most specific" follows the rule in the module docstring: most explicit form, then narrowest
    range, then latest in the text.
    """
    candidates = _candidates(text, now, tz)
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (c.rank, c.found.start - c.found.end, c.start))
    return best.found
