"""A digest's figures: everything it says, built once from the read model and kept."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.quiet_hours import zone
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import rankings, totals
from handlers.impact.digest_schedule import iso_week, weeks_for
from handlers.impact.linkedin_posts import confirmed
from handlers.impact.rankings import LoggedWin, OpenRequest, Ranked
from handlers.impact.totals import Totals

KEPT = 50  # items of each list kept for the digest's page


class Figures(BaseModel):
    """Everything a digest says, as built; kept on the Digest row for its page and chart."""

    model_config = ConfigDict(frozen=True)

    week: str
    first_day: date
    last_day: date
    weeks: list[str]  # the series' labels: each week's first day, like "16 Nov"
    series: list[Totals]  # oldest first; the last is the week reported on
    first_timers: list[str]
    median_seconds: float | None
    top_posts: list[Ranked]
    posts_total: int
    top_sharers: list[Ranked]
    sharers_total: int
    top_experts: list[Ranked]
    experts_total: int
    wins: list[LoggedWin]
    wins_total: int
    open_requests: list[OpenRequest]
    open_total: int
    # Posts LinkedIn confirmed this week (share buttons pressed are `shares`, intents).
    linkedin_posts: int = 0

    @property
    def this(self) -> Totals:
        return self.series[-1]

    @property
    def previous(self) -> Totals:
        return self.series[-2]

    @property
    def quiet(self) -> bool:
        return self.this == Totals()

    def average_participants(self) -> float:
        """Participants a week over the four weeks before this one."""
        earlier = self.series[-5:-1]
        return sum(t.participants for t in earlier) / len(earlier) if earlier else 0.0


async def build(
    session: AsyncSession, workspace_id: int, settings: WorkspaceSettings, scheduled: datetime
) -> Figures:
    """The figures of the digest scheduled at `scheduled`: one SQL aggregate per figure."""
    periods = weeks_for(settings, scheduled)
    period = periods[-1]
    tz = zone(settings.timezone)
    series = await totals.weekly_totals(session, workspace_id, periods)
    ranked = await rankings.rankings(session, workspace_id, period, KEPT)
    wins, wins_total = await rankings.wins(session, workspace_id, period, KEPT)
    waiting, open_total = await rankings.open_requests(session, workspace_id, KEPT)
    first_day = period.start.astimezone(tz).date()
    return Figures(
        week=iso_week(first_day),
        first_day=first_day,
        last_day=first_day + timedelta(days=6),
        weeks=[f"{p.start.astimezone(tz):%d %b}".lstrip("0") for p in periods],
        series=series,
        first_timers=await totals.first_timers(session, workspace_id, period),
        median_seconds=await totals.median_turnaround(session, workspace_id, period),
        top_posts=ranked.posts,
        posts_total=ranked.posts_total,
        top_sharers=ranked.sharers,
        sharers_total=ranked.sharers_total,
        top_experts=ranked.experts,
        experts_total=ranked.experts_total,
        wins=wins,
        wins_total=wins_total,
        open_requests=waiting,
        open_total=open_total,
        linkedin_posts=(await confirmed(session, workspace_id, period)).total,
    )
