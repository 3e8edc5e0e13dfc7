"""Temporal expressions → UTC ranges in the user's zone (mirix.search.temporal)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mirix.search.temporal import DateRange, find_temporal_expression, parse_temporal_expression

# Wednesday 15 May 2024, mid-afternoon UTC: every relative case below is computed from it.
NOW = datetime(2024, 5, 15, 14, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def midnight(d: date, tz: str = "UTC") -> datetime:
    """Local midnight of `d` in `tz`, as a UTC instant (what the parser must return)."""
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def utc(y: int, m: int, d: int, hour: int = 0) -> datetime:
    return datetime(y, m, d, hour, tzinfo=UTC)


def D(y: int, m: int, d: int) -> date:  # noqa: N802 - reads like a literal in the table
    return date(y, m, d)


CASES = [
    # today / yesterday / tomorrow
    ("today", D(2024, 5, 15), D(2024, 5, 16), "today"),
    ("What did I do yesterday?", D(2024, 5, 14), D(2024, 5, 15), "yesterday"),
    ("the day before yesterday", D(2024, 5, 13), D(2024, 5, 14), "the day before yesterday"),
    ("Tomorrow!", D(2024, 5, 16), D(2024, 5, 17), "Tomorrow"),
    ("what did I eat last night", D(2024, 5, 14), D(2024, 5, 15), "last night"),
    # N units ago: the whole unit containing the point N units back
    ("remember the concert 3 days ago", D(2024, 5, 12), D(2024, 5, 13), "3 days ago"),
    ("a week ago", D(2024, 5, 6), D(2024, 5, 13), "a week ago"),
    ("two weeks ago", D(2024, 4, 29), D(2024, 5, 6), "two weeks ago"),
    ("two months ago", D(2024, 3, 1), D(2024, 4, 1), "two months ago"),
    ("about a year ago", D(2023, 1, 1), D(2024, 1, 1), "a year ago"),
    ("Twelve years ago", D(2012, 1, 1), D(2013, 1, 1), "Twelve years ago"),
    ("5 days back", D(2024, 5, 10), D(2024, 5, 11), "5 days back"),
    # rolling windows ending at the end of today
    ("last 3 days", D(2024, 5, 12), D(2024, 5, 16), "last 3 days"),
    ("past 2 weeks", D(2024, 5, 1), D(2024, 5, 16), "past 2 weeks"),
    ("anything in the last 3 days?", D(2024, 5, 12), D(2024, 5, 16), "in the last 3 days"),
    ("over the past two months", D(2024, 3, 15), D(2024, 5, 16), "over the past two months"),
    ("the last 1 year", D(2023, 5, 15), D(2024, 5, 16), "the last 1 year"),
    ("in the past week", D(2024, 5, 8), D(2024, 5, 16), "in the past week"),
    ("past month", D(2024, 4, 15), D(2024, 5, 16), "past month"),
    # calendar weeks (Monday-Sunday), months, years, weekends
    ("what did I do last week?", D(2024, 5, 6), D(2024, 5, 13), "last week"),
    ("LAST WEEK", D(2024, 5, 6), D(2024, 5, 13), "LAST WEEK"),
    ("this week", D(2024, 5, 13), D(2024, 5, 20), "this week"),
    ("next week", D(2024, 5, 20), D(2024, 5, 27), "next week"),
    ("last month", D(2024, 4, 1), D(2024, 5, 1), "last month"),
    ("this month", D(2024, 5, 1), D(2024, 6, 1), "this month"),
    ("last year", D(2023, 1, 1), D(2024, 1, 1), "last year"),
    ("this year", D(2024, 1, 1), D(2025, 1, 1), "this year"),
    ("last weekend", D(2024, 5, 11), D(2024, 5, 13), "last weekend"),
    ("this weekend", D(2024, 5, 18), D(2024, 5, 20), "this weekend"),
    ("this past weekend", D(2024, 5, 11), D(2024, 5, 13), "this past weekend"),
    # weekdays (NOW is a Wednesday)
    ("on Monday", D(2024, 5, 13), D(2024, 5, 14), "on Monday"),
    ("Wednesday", D(2024, 5, 15), D(2024, 5, 16), "Wednesday"),
    ("last Wednesday", D(2024, 5, 8), D(2024, 5, 9), "last Wednesday"),
    ("last Friday", D(2024, 5, 10), D(2024, 5, 11), "last Friday"),
    ("this Tuesday", D(2024, 5, 14), D(2024, 5, 15), "this Tuesday"),
    ("this Friday", D(2024, 5, 17), D(2024, 5, 18), "this Friday"),
    ("Friday last week", D(2024, 5, 10), D(2024, 5, 11), "Friday last week"),
    ("on Tuesday of last week", D(2024, 5, 7), D(2024, 5, 8), "on Tuesday of last week"),
    # explicit dates
    ("2023-05-08", D(2023, 5, 8), D(2023, 5, 9), "2023-05-08"),
    ("2023/05/08", D(2023, 5, 8), D(2023, 5, 9), "2023/05/08"),
    ("8 May 2023", D(2023, 5, 8), D(2023, 5, 9), "8 May 2023"),
    ("May 8 2023", D(2023, 5, 8), D(2023, 5, 9), "May 8 2023"),
    ("on May 8th, 2023.", D(2023, 5, 8), D(2023, 5, 9), "May 8th, 2023"),
    ("the 8th of May 2023", D(2023, 5, 8), D(2023, 5, 9), "the 8th of May 2023"),
    ("05/08/2023", D(2023, 5, 8), D(2023, 5, 9), "05/08/2023"),
    ("on Monday, May 8, 2023", D(2023, 5, 8), D(2023, 5, 9), "Monday, May 8, 2023"),
    ("Jan. 5", D(2024, 1, 5), D(2024, 1, 6), "Jan. 5"),
    ("sept 3rd", D(2023, 9, 3), D(2023, 9, 4), "sept 3rd"),
    # no year: the most recent occurrence not after now (today counts)
    ("May 8", D(2024, 5, 8), D(2024, 5, 9), "May 8"),
    ("May 15", D(2024, 5, 15), D(2024, 5, 16), "May 15"),
    ("May 20", D(2023, 5, 20), D(2023, 5, 21), "May 20"),
    # months and years
    ("in March", D(2024, 3, 1), D(2024, 4, 1), "in March"),
    ("in June", D(2023, 6, 1), D(2023, 7, 1), "in June"),
    ("in May", D(2024, 5, 1), D(2024, 6, 1), "in May"),
    ("March 2023", D(2023, 3, 1), D(2023, 4, 1), "March 2023"),
    ("in March of 2023", D(2023, 3, 1), D(2023, 4, 1), "March of 2023"),
    ("last June", D(2023, 6, 1), D(2023, 7, 1), "last June"),
    ("in mid-March", D(2024, 3, 1), D(2024, 4, 1), "in mid-March"),
    ("in 2022", D(2022, 1, 1), D(2023, 1, 1), "in 2022"),
    # ranges: the end date counts as a whole day
    ("from May 1 to May 7", D(2024, 5, 1), D(2024, 5, 8), "from May 1 to May 7"),
    ("between May 1 and May 7, 2023", D(2023, 5, 1), D(2023, 5, 8), "between May 1 and May 7, 2023"),
    ("May 1 - May 7", D(2024, 5, 1), D(2024, 5, 8), "May 1 - May 7"),
    ("May 1-7, 2023", D(2023, 5, 1), D(2023, 5, 8), "May 1-7, 2023"),
    ("1-7 May 2023", D(2023, 5, 1), D(2023, 5, 8), "1-7 May 2023"),
    ("between the 1st and the 7th of May", D(2024, 5, 1), D(2024, 5, 8), "between the 1st and the 7th of May"),
    ("from 2023-05-01 to 2023-05-07", D(2023, 5, 1), D(2023, 5, 8), "from 2023-05-01 to 2023-05-07"),
    ("from 05/01/2023 through 05/07/2023", D(2023, 5, 1), D(2023, 5, 8), "from 05/01/2023 through 05/07/2023"),
    ("from March to May 2023", D(2023, 3, 1), D(2023, 6, 1), "from March to May 2023"),
    ("Dec 28 to Jan 3, 2024", D(2023, 12, 28), D(2024, 1, 4), "Dec 28 to Jan 3, 2024"),
    ("from Dec 28 to Jan 3", D(2023, 12, 28), D(2024, 1, 4), "from Dec 28 to Jan 3"),
    ("between 2020 and 2022", D(2020, 1, 1), D(2023, 1, 1), "between 2020 and 2022"),
    ("from 2023-05-07 to 2023-05-01", D(2023, 5, 1), D(2023, 5, 8), "from 2023-05-07 to 2023-05-01"),
    # since: from the start of the expression through the end of today
    ("since May 1", D(2024, 5, 1), D(2024, 5, 16), "since May 1"),
    ("since last week", D(2024, 5, 6), D(2024, 5, 16), "since last week"),
    ("since March", D(2024, 3, 1), D(2024, 5, 16), "since March"),
    ("since 2022", D(2022, 1, 1), D(2024, 5, 16), "since 2022"),
]


@pytest.mark.parametrize(("text", "start", "end", "expression"), CASES, ids=[c[0] for c in CASES])
def test_forms(text: str, start: date, end: date, expression: str) -> None:
    result = parse_temporal_expression(text, now=NOW)
    assert result == DateRange(midnight(start), midnight(end), expression)
    # A text holding one expression reads the same either way.
    assert find_temporal_expression(text, now=NOW) == result


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_results_are_utc_half_open_and_quote_the_text(text: str) -> None:
    result = parse_temporal_expression(f"Hey, {text} - thanks", now=NOW, tz="Asia/Tokyo")
    assert result is not None
    assert result.start.utcoffset() == timedelta(0) and result.end.utcoffset() == timedelta(0)
    assert result.start < result.end
    assert result.expression in text


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        ("UTC", datetime(2024, 5, 15, tzinfo=UTC)),
        ("America/New_York", datetime(2024, 5, 15, 4, tzinfo=UTC)),  # 19:30 on the 15th, EDT (UTC-4)
        ("Asia/Tokyo", datetime(2024, 5, 15, 15, tzinfo=UTC)),  # already 08:30 on the 16th (UTC+9)
        ("Australia/Sydney", datetime(2024, 5, 15, 14, tzinfo=UTC)),  # 09:30 on the 16th, AEST (UTC+10)
    ],
)
def test_today_is_the_users_day(tz: str, start: datetime) -> None:
    late = datetime(2024, 5, 15, 23, 30, tzinfo=UTC)
    result = parse_temporal_expression("today", now=late, tz=tz)
    assert result == DateRange(start, start + 24 * HOUR, "today")


def test_same_text_different_zones_give_different_utc_boundaries() -> None:
    starts = {
        tz: parse_temporal_expression("on 8 May 2023", now=NOW, tz=tz).start
        for tz in ("UTC", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
    }
    assert starts == {
        "UTC": datetime(2023, 5, 8, tzinfo=UTC),
        "America/New_York": datetime(2023, 5, 8, 4, tzinfo=UTC),
        "Asia/Tokyo": datetime(2023, 5, 7, 15, tzinfo=UTC),
        "Australia/Sydney": datetime(2023, 5, 7, 14, tzinfo=UTC),
    }


def test_now_in_another_zone_is_converted_first() -> None:
    tokyo_morning = datetime(2024, 5, 16, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2024-05-15 19:30 in New York
    result = parse_temporal_expression("yesterday", now=tokyo_morning, tz="America/New_York")
    assert result is not None and result.start == midnight(D(2024, 5, 14), "America/New_York")


@pytest.mark.parametrize(
    ("text", "tz", "start", "end", "hours"),
    [
        # US spring forward: 2024-03-10 in New York has 23 hours
        ("March 10, 2024", "America/New_York", utc(2024, 3, 10, 5), utc(2024, 3, 11, 4), 23),
        ("from March 9 to March 10, 2024", "America/New_York", utc(2024, 3, 9, 5), utc(2024, 3, 11, 4), 47),
        # US fall back: 2024-11-03 has 25 hours
        ("2024-11-03", "America/New_York", utc(2024, 11, 3, 4), utc(2024, 11, 4, 5), 25),
        ("between Nov 2 and Nov 4, 2024", "America/New_York", utc(2024, 11, 2, 4), utc(2024, 11, 5, 5), 73),
        # southern hemisphere: Sydney falls back on 2024-04-07
        ("7 April 2024", "Australia/Sydney", utc(2024, 4, 6, 13), utc(2024, 4, 7, 14), 25),
        # UTC has no DST: the same day is 24 hours
        ("March 10, 2024", "UTC", utc(2024, 3, 10), utc(2024, 3, 11), 24),
    ],
)
def test_dst_days_keep_their_real_length(text: str, tz: str, start: datetime, end: datetime, hours: int) -> None:
    result = parse_temporal_expression(text, now=NOW, tz=tz)
    assert result is not None
    assert (result.start, result.end) == (start, end)
    assert result.end - result.start == hours * HOUR


def test_week_across_spring_forward_is_167_hours() -> None:
    tuesday = datetime(2024, 3, 12, 15, tzinfo=UTC)
    result = parse_temporal_expression("last week", now=tuesday, tz="America/New_York")
    assert result is not None
    assert result.start == midnight(D(2024, 3, 4), "America/New_York")
    assert result.end == midnight(D(2024, 3, 11), "America/New_York")
    assert result.end - result.start == 167 * HOUR


@pytest.mark.parametrize(
    ("now", "text", "start", "end"),
    [
        (D(2024, 1, 15), "2 months ago", D(2023, 11, 1), D(2023, 12, 1)),
        (D(2024, 1, 15), "one month ago", D(2023, 12, 1), D(2024, 1, 1)),
        (D(2024, 1, 15), "13 months ago", D(2022, 12, 1), D(2023, 1, 1)),
        (D(2024, 1, 15), "last month", D(2023, 12, 1), D(2024, 1, 1)),
        (D(2024, 2, 10), "in the last 3 months", D(2023, 11, 10), D(2024, 2, 11)),
        (D(2024, 1, 3), "last week", D(2023, 12, 25), D(2024, 1, 1)),
        (D(2024, 1, 3), "in March", D(2023, 3, 1), D(2023, 4, 1)),
        (D(2024, 1, 3), "Dec 31", D(2023, 12, 31), D(2024, 1, 1)),
        # clamping: a month before 31 March is the end of February
        (D(2024, 3, 31), "past 1 month", D(2024, 2, 29), D(2024, 4, 1)),
        (D(2023, 3, 31), "past 1 month", D(2023, 2, 28), D(2023, 4, 1)),
    ],
)
def test_months_across_year_boundaries(now: date, text: str, start: date, end: date) -> None:
    result = parse_temporal_expression(text, now=datetime(now.year, now.month, now.day, 12, tzinfo=UTC))
    assert result is not None
    assert (result.start, result.end) == (midnight(start), midnight(end))


@pytest.mark.parametrize(
    ("now", "text", "start", "end"),
    [
        (D(2024, 5, 15), "Feb 29, 2024", D(2024, 2, 29), D(2024, 3, 1)),
        (D(2024, 5, 15), "2024-02-29", D(2024, 2, 29), D(2024, 3, 1)),
        (D(2024, 5, 15), "02/29/2024", D(2024, 2, 29), D(2024, 3, 1)),
        (D(2025, 6, 1), "Feb 29", D(2024, 2, 29), D(2024, 3, 1)),  # latest leap day before now
        (D(2024, 2, 29), "a year ago", D(2023, 1, 1), D(2024, 1, 1)),
        (D(2024, 2, 29), "past year", D(2023, 2, 28), D(2024, 3, 1)),
        (D(2024, 3, 1), "yesterday", D(2024, 2, 29), D(2024, 3, 1)),
    ],
)
def test_leap_day(now: date, text: str, start: date, end: date) -> None:
    result = parse_temporal_expression(text, now=datetime(now.year, now.month, now.day, 12, tzinfo=UTC))
    assert result is not None
    assert (result.start, result.end) == (midnight(start), midnight(end))


@pytest.mark.parametrize(
    ("weekday_now", "text", "start", "end"),
    [
        (D(2024, 5, 19), "this weekend", D(2024, 5, 18), D(2024, 5, 20)),  # Sunday: the current one
        (D(2024, 5, 19), "last weekend", D(2024, 5, 11), D(2024, 5, 13)),
        (D(2024, 5, 19), "this past weekend", D(2024, 5, 18), D(2024, 5, 20)),
        (D(2024, 5, 13), "on Monday", D(2024, 5, 13), D(2024, 5, 14)),  # plain weekday may be today
        (D(2024, 5, 13), "last Monday", D(2024, 5, 6), D(2024, 5, 7)),  # "last" is strictly before today
        (D(2024, 5, 13), "Sunday", D(2024, 5, 12), D(2024, 5, 13)),
    ],
)
def test_weekdays_and_weekends_relative_to_today(weekday_now: date, text: str, start: date, end: date) -> None:
    now = datetime(weekday_now.year, weekday_now.month, weekday_now.day, 12, tzinfo=UTC)
    result = parse_temporal_expression(text, now=now)
    assert result is not None
    assert (result.start, result.end) == (midnight(start), midnight(end))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello there, how are you?",
        "I may go to the store",
        "May I ask you something?",
        "this may take a while",
        "we march on",
        "at 5 may be too late",
        "I slept 7 to 8 hours",
        "rooms 12 - 14",
        "Feb 30, 2024",
        "2024-13-01",
        "I went on 2024-02-30",
        "99999 years ago",
        "last 9999 years",
        "in a while",
        "week",
        "Jan.",
        "\x00\ufffd🙂",
    ],
)
def test_no_temporal_expression_is_none(text: str) -> None:
    assert parse_temporal_expression(text, now=NOW) is None
    assert find_temporal_expression(text, now=NOW) is None


def test_two_dates_joined_by_and_are_not_a_range() -> None:
    result = parse_temporal_expression("I was there on May 1 and May 7", now=NOW)
    assert result is not None and result.expression == "May 1"


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        # an explicit date beats a relative word, wherever it appears
        ("What did I do today? I went to the concert on May 8, 2023.", "May 8, 2023"),
        ("between May 1 and May 7 - or was it today?", "between May 1 and May 7"),
        # a year makes a calendar form more explicit than one without
        ("in March ... no, on 2023-03-04", "2023-03-04"),
        ("on Friday, or in 2022", "in 2022"),
        # a calendar name beats a relative phrase
        ("Last week, on Tuesday", "on Tuesday"),
        # same rank: the narrower range wins
        ("in 2023 and then on May 5, 2023", "May 5, 2023"),
        ("last week I was ill but yesterday was fine", "yesterday"),
        # same rank and width: the later mention (the latest message) wins
        ("user: yesterday?\nassistant: you said 3 days ago", "3 days ago"),
        # overlapping matches: the longer expression wins
        ("the day before yesterday", "the day before yesterday"),
        ("Friday last week", "Friday last week"),
    ],
)
def test_find_picks_the_most_specific(text: str, expression: str) -> None:
    result = find_temporal_expression(text, now=NOW)
    assert result is not None and result.expression == expression


def test_parse_takes_the_first_expression() -> None:
    text = "yesterday, or maybe on May 8, 2023"
    assert parse_temporal_expression(text, now=NOW).expression == "yesterday"
    assert find_temporal_expression(text, now=NOW).expression == "May 8, 2023"


@pytest.mark.parametrize("function", [parse_temporal_expression, find_temporal_expression])
def test_naive_now_is_rejected(function) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        function("today", now=datetime(2024, 5, 15, 12))


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "America", "", "../etc/passwd", "utc "])
@pytest.mark.parametrize("function", [parse_temporal_expression, find_temporal_expression])
def test_unknown_zone_is_rejected(function, tz: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        function("today", now=NOW, tz=tz)


@pytest.mark.parametrize(
    "text",
    [
        "9" * 5000,
        "-" * 5000,
        "May " * 2000,
        "1 " * 5000,
        "2024-01-01" * 300,
        "since " * 1000,
        "from to and between " * 200,
        "\u2014".join(["May 1"] * 500),
    ],
)
def test_odd_input_never_raises(text: str) -> None:
    parse_temporal_expression(text, now=NOW, tz="Asia/Tokyo")
    find_temporal_expression(text, now=NOW, tz="Asia/Tokyo")


def test_date_range_is_frozen() -> None:
    result = parse_temporal_expression("today", now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.start = NOW  # type: ignore[misc]


def test_wire_timestamps_are_utc_aware():
    from datetime import UTC, datetime, timedelta, timezone

    from mirix.schemas.jobs import AddMemoryRequest
    from mirix.timezones import as_utc, parse_iso

    assert parse_iso("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_iso(" 2024-05-01T10:00:00Z ") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    plus_two = parse_iso("2024-05-01T10:00:00+02:00")
    assert plus_two.utcoffset() == timedelta(hours=2) and plus_two == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert as_utc(datetime(2024, 1, 1)).tzinfo is UTC
    east = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=9)))
    assert as_utc(east) is east
    with pytest.raises(ValueError):
        parse_iso("yesterday")
    body = AddMemoryRequest(user_id="u", messages=[{"role": "user", "content": "hi"}], occurred_at="2024-05-01T10:00")
    assert body.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
