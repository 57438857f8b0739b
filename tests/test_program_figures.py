"""The program page's pieces without HTTP: periods, changes, spreads, charts and CSV cells."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.web.oidc import SignInRefused, microsoft_provider
from handlers.impact.pipeline import percentile, spread
from handlers.program.charts import bar_chart
from handlers.program.pages import change
from handlers.program.period import PeriodError, parse
from handlers.program.tables import Column, Person, Table, neutralised, to_csv

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_last_weeks_end_today_and_start_at_local_midnight() -> None:
    window = parse({"weeks": "52"}, NOW, PARIS)
    assert (window.first_day, window.last_day) == (date(2025, 12, 2), date(2026, 11, 30))
    assert window.period.start == datetime(2025, 12, 1, 23, 0, tzinfo=UTC)
    assert window.period.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert window.previous.end == window.period.start
    weeks = window.weekly()
    assert len(weeks) == 52 and weeks[-1].end == window.period.end
    # Across the change to summer time a week is still seven local days.
    assert all(w.start.astimezone(PARIS).hour == 0 for w in weeks)
    assert parse({}, NOW, PARIS).weeks == 12


def test_a_from_to_period_is_compared_with_as_many_days_before() -> None:
    window = parse({"from": "2026-11-23", "to": "2026-11-29"}, NOW, PARIS)
    assert window.weeks is None and window.query() == {"from": "2026-11-23", "to": "2026-11-29"}
    assert window.previous.start.astimezone(PARIS).date() == date(2026, 11, 16)
    one_day = parse({"from": "2026-11-29", "to": "2026-11-29"}, NOW, PARIS)
    assert len(one_day.weekly()) == 1
    longest = parse({"from": "2021-12-01", "to": "2026-11-29"}, NOW, PARIS)
    assert len(longest.weekly()) == 261


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-11-29", "to": "2026-11-28"}, "is after the end date"),
        ({"from": "29/11/2026", "to": "2026-11-30"}, "is not a date"),
        ({"from": "2026-11-29", "to": "2026-02-30"}, "The end date “2026-02-30” is not a date"),
        ({"from": "2020-11-01", "to": "2026-11-29"}, "at most 5 years"),
        ({"to": "2026-11-29"}, "Give both a start and an end date"),
        ({"weeks": "1000000000000000000000"}, "Choose 4, 12, 26 or 52 weeks."),
        ({"weeks": "٤"}, "Choose 4, 12, 26 or 52 weeks."),
    ],
)
def test_bad_periods_say_what_is_wrong(query: dict[str, str], message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        parse(query, NOW, PARIS)


def test_changes_read_as_people_say_them() -> None:
    assert change(5, 0) == "new"
    assert change(0, 0) == "no change"
    assert change(3, 2) == "+50%"
    assert change(1, 4) == "−75%"
    assert change(100, 100) == "no change"


def test_spreads_give_the_median_and_90th_percentile() -> None:
    assert spread([]).median is None
    assert spread([3.0, 1.0, 2.0]) == spread([1.0, 2.0, 3.0])
    assert spread([1.0, 2.0, 3.0, 4.0]).median == 2.5
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert spread([float(n) for n in range(1, 101)]).p90 == 90.0


def test_charts_describe_themselves() -> None:
    chart = bar_chart("c", "Clicks", ["2026-11-03", "2026-11-10"], [4, 10])
    assert chart.description == (
        "Clicks per week over 2 weeks: 14 in all, highest 10 in the week of 2026-11-10, "
        "last week 10."
    )
    assert [b.label for b in chart.bars] == ["2026-11-03: 4", "2026-11-10: 10"]
    assert chart.bars[1].height > chart.bars[0].height > 0
    assert bar_chart("c", "Wins", [], []).description == "No wins in this period."


@pytest.mark.parametrize(
    "value", ["=1+1", "+33", "-2", "@SUM(A1)", "\tcmd", "\rcmd", '=HYPERLINK("x")']
)
def test_cells_that_look_like_formulas_are_neutralised(value: str) -> None:
    assert neutralised(value) == "'" + value
    table = Table("t", "T", (Column("v", "Value"),), [(value,)])
    [header, row] = list(csv.reader(io.StringIO(to_csv(table).decode("utf-8-sig"), newline="")))
    assert header == ["Value"] and row == ["'" + value]


def test_csv_cells_are_plain_text_with_iso_dates() -> None:
    table = Table(
        "t",
        "T",
        (Column("who", "Who"), Column("on", "On"), Column("n", "N", numeric=True)),
        [(Person("U1", 'Zoë, "the" expert'), date(2026, 11, 3), 1234), (None, None, 1.25)],
    )
    raw = to_csv(table)
    assert raw.startswith(b"\xef\xbb\xbf") and raw.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["Who", "On", "N"],
        ['Zoë, "the" expert', "2026-11-03", "1234"],
        ["", "", "1.2"],
    ]


def test_a_single_tenant_sign_in_takes_only_its_own_organisation() -> None:
    provider = microsoft_provider("https://login.test", "tenant-1", "app", "secret")
    provider.check_issuer({"tid": "tenant-1", "iss": "https://login.test/tenant-1/v2.0"})
    with pytest.raises(SignInRefused, match="belongs to another organisation"):
        provider.check_issuer({"tid": "tenant-2", "iss": "https://login.test/tenant-2/v2.0"})
    with pytest.raises(SignInRefused, match="unexpected issuer"):
        provider.check_issuer({"tid": "tenant-1", "iss": "https://evil.test/tenant-1/v2.0"})
    anyone = microsoft_provider("https://login.test", "organizations", "app", "secret")
    anyone.check_issuer({"tid": "tenant-2", "iss": "https://login.test/tenant-2/v2.0"})
    assert anyone.identity({"tid": "tenant-2", "oid": "o-1", "name": "Tess"}).user_id == "o-1"
    with pytest.raises(SignInRefused, match="did not say which workspace"):
        anyone.identity({"tid": "tenant-2"})
