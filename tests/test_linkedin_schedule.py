"""When a LinkedIn post may be scheduled: the times offered, and any other value refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.core.quiet_hours import WorkingHours
from handlers.linkedin.posting import _chosen_time, slot_label, slots

PARIS = ZoneInfo("Europe/Paris")
HOURS = WorkingHours()
FRIDAY_16 = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 16:00 in Paris


def test_the_times_offered_start_on_the_next_working_morning_in_the_persons_zone() -> None:
    offered = slots(FRIDAY_16, PARIS, HOURS)
    local = [m.astimezone(PARIS) for m in offered]
    assert local[0] == datetime(2026, 11, 30, 9, 0, tzinfo=PARIS)  # Monday, not Saturday
    assert {m.date().isoformat() for m in local} == {"2026-11-30", "2026-12-01", "2026-12-02"}
    assert all(HOURS.allows(m) for m in local)
    assert slot_label(offered[0], PARIS, FRIDAY_16).startswith("Monday morning, 09:00")
    tuesday = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert slot_label(slots(tuesday, PARIS, HOURS)[0], PARIS, tuesday).startswith(
        "Tomorrow morning, 09:00"
    )


@pytest.mark.parametrize(
    "raw",
    ["", "later", "at:", "at:-5", "at:²", "at:١٢", "at:99999999999999999999", "at:0", "at:1 2"],
)
def test_a_time_that_was_not_offered_is_refused_in_words(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^Choose"):
        _chosen_time(raw, FRIDAY_16, PARIS, HOURS)


def test_now_and_an_offered_time_are_accepted() -> None:
    assert _chosen_time("now", FRIDAY_16, PARIS, HOURS) is None
    monday = slots(FRIDAY_16, PARIS, HOURS)[0]
    assert _chosen_time(f"at:{int(monday.timestamp())}", FRIDAY_16, PARIS, HOURS) == monday
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=PARIS)
    with pytest.raises(ValueError, match="working hours"):
        _chosen_time(f"at:{int(saturday.timestamp())}", FRIDAY_16, PARIS, HOURS)
