"""The program page's pages as models: titled tables (shown and downloadable) and charts.

Every figure comes from the impact read model (`handlers/impact`), the one the digests and
`stats` use, so a click, a participant and a published post mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.impact import content, funnel, people, pipeline, rankings
from handlers.impact.query import MEMBER, rows
from handlers.program.access import Viewer, member_of, require_workspace
from handlers.program.charts import Chart, bar_chart
from handlers.program.period import Window
from handlers.program.tables import Column, Person, Table

PAGES = ("overview", "trends", "demand", "content", "people")
SORTS = {
    "clicks": lambda p: (-p.clicks, -p.shares, p.id),
    "shares": lambda p: (-p.shares, -p.clicks, p.id),
    "wins": lambda p: (-p.wins, -p.clicks, p.id),
    "published": lambda p: (p.published_at, p.id),
    "title": lambda p: (p.title.casefold(), p.id),
}
SHOWN = 50  # rows of a long table on the page; its CSV has them all


class BadQuery(ValueError):
    """A query string the page cannot answer; the message is for the page."""


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    title: str
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def change(now: int, before: int) -> str:
    """The change against the period before, as people read it."""
    if before == 0:
        return "new" if now else "no change"
    percent = round((now - before) * 100 / before)
    if percent == 0:
        return "no change"
    return f"+{percent}%" if percent > 0 else f"−{-percent}%"


async def names(
    session: AsyncSession, workspace_id: int, user_ids: Iterable[str]
) -> dict[str, Person]:
    """People of the workspace by user id, with their display names."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    query = select(MEMBER.c.user_id, MEMBER.c.name).where(
        MEMBER.c.workspace_id == workspace_id, MEMBER.c.user_id.in_(wanted)
    )
    found = {u: Person(u, n or u) for u, n in await rows(session, query)}
    return {u: found.get(u, Person(u, u)) for u in wanted}


def number(key: str, label: str) -> Column:
    return Column(key, label, numeric=True)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


async def overview(session: AsyncSession, viewer: Viewer, window: Window) -> Page:
    """The funnel of the period against the period before."""
    require_workspace(viewer)
    now, before = await funnel.funnels(
        session, viewer.workspace_id, [window.period, window.previous]
    )
    stages = (
        ("Requests", "requests"),
        ("+1s on requests", "votes"),
        ("Requests claimed by an expert", "claimed"),
        ("Drafts sent for review", "drafted"),
        ("Drafts approved", "approved"),
        ("Published from requests", "published_requested"),
        ("Published from other content", "published_other"),
        ("Share buttons pressed (intents)", "share_intents"),
        ("Shares confirmed by a click", "shares_confirmed"),
        ("Clicks (people only)", "clicks"),
        ("Wins", "wins"),
    )
    table = Table(
        "funnel",
        "The loop, stage by stage",
        (
            Column("stage", "Stage"),
            Column("period", "This period", numeric=True),
            Column("previous", "Period before", numeric=True),
            Column("change", "Change", numeric=True),
        ),
        [
            (
                label,
                getattr(now, key),
                getattr(before, key),
                change(getattr(now, key), getattr(before, key)),
            )
            for label, key in stages
        ],
    )
    notes = []
    if now.share_intents:
        notes.append(f"{now.clicks / now.share_intents:.1f} clicks per share in this period.")
    return Page("overview", "Overview", (table,), notes=tuple(notes))


async def trends(session: AsyncSession, viewer: Viewer, window: Window) -> Page:
    """Participants, shares, clicks, wins and first-time contributors, week by week."""
    require_workspace(viewer)
    weeks = await funnel.weeks(session, viewer.workspace_id, window.weekly())
    labels = [w.period.start.date().isoformat() for w in weeks]
    series = (
        ("participants", "Participants", [w.totals.participants for w in weeks]),
        ("shares", "Shares", [w.totals.shares for w in weeks]),
        ("clicks", "Clicks", [w.totals.clicks for w in weeks]),
        ("wins", "Wins", [w.totals.wins for w in weeks]),
        ("first_timers", "First-time contributors", [w.first_timers for w in weeks]),
    )
    table = Table(
        "weekly",
        "Week by week",
        (Column("week", "Week starting"), *(Column(k, t, numeric=True) for k, t, _ in series)),
        [
            (w.period.start.date(), *(values[i] for _, _, values in series))
            for i, w in enumerate(weeks)
        ],
    )
    charts = tuple(bar_chart(f"chart-{k}", t, labels, v) for k, t, v in series)
    return Page("trends", "Trends", (table,), charts)


async def demand(session: AsyncSession, viewer: Viewer, window: Window, now: datetime) -> Page:
    """What people ask for, how long the loop takes to answer, and the experts' part."""
    require_workspace(viewer)
    wid = viewer.workspace_id
    ages = await pipeline.waiting_by_age(session, wid, now)
    waiting = Table(
        "waiting",
        "Requests waiting for an expert, by age",
        (
            Column("age", "Asked"),
            Column("open", "Open", numeric=True),
            Column("unmet", "Unmet (no expert took it)", numeric=True),
            Column("votes", "+1s", numeric=True),
        ),
        [(a.label, a.open, a.unmet, a.votes) for a in ages],
    )
    claim = await pipeline.time_to_claim(session, wid, window.period)
    publish = await pipeline.time_to_publish(session, wid, window.period)
    timing = Table(
        "timing",
        "How long the loop takes",
        (
            Column("measure", "From request to"),
            Column("count", "Requests", numeric=True),
            Column("median", "Median (hours)", numeric=True),
            Column("p90", "90th percentile (hours)", numeric=True),
        ),
        [
            ("First claim", claim.count, _hours(claim.median), _hours(claim.p90)),
            ("Publication", publish.count, _hours(publish.median), _hours(publish.p90)),
        ],
    )
    found = await pipeline.experts(session, wid, window.period)
    who = await names(session, wid, [e.user_id for e in found])
    experts = Table(
        "experts",
        "Experts: answers and load",
        (
            Column("expert", "Expert"),
            Column("pinged", "Asked", numeric=True),
            Column("answered", "Answered", numeric=True),
            Column("rate", "Response rate (%)", numeric=True),
            Column("claimed", "Claimed", numeric=True),
            Column("active", "Working on now", numeric=True),
            Column("capacity", "Capacity", numeric=True),
        ),
        [
            (
                who[e.user_id],
                e.pinged,
                e.answered,
                None if e.response_rate is None else round(e.response_rate * 100.0, 1),
                e.claimed,
                e.active,
                e.capacity,
            )
            for e in found
        ],
        empty="No expert was asked in this period.",
    )
    waiting_list, _ = await rankings.open_requests(session, wid, limit=1000)
    asked = await names(session, wid, [r.requester for r in waiting_list])
    requests = Table(
        "requests",
        "Requests waiting, most wanted first",
        (
            Column("topic", "Topic"),
            Column("requester", "Asked by"),
            Column("status", "Status"),
            Column("votes", "+1s", numeric=True),
            Column("asked", "Asked on"),
        ),
        [
            (
                r.topic,
                asked[r.requester],
                "unmet" if r.status == pipeline.UNMET else "open",
                r.votes,
                r.created_at.astimezone(viewer.timezone).date(),
            )
            for r in waiting_list
        ],
        empty="None: every request has an expert.",
    )
    return Page("demand", "Demand", (waiting, timing, experts, requests))


def _posts_table(found: list[content.PostReach], who: dict[str, Person], viewer: Viewer) -> Table:
    return Table(
        "posts",
        "Posts and their reach",
        (
            Column("title", "Post"),
            Column("author", "Author"),
            Column("published", "Published"),
            Column("source", "Source"),
            Column("linkedin", "LinkedIn shares", numeric=True),
            Column("x", "X shares", numeric=True),
            Column("email", "Email shares", numeric=True),
            Column("shares", "Shares", numeric=True),
            Column("clicks", "Clicks", numeric=True),
            Column("wins", "Wins", numeric=True),
        ),
        [
            (
                p.title,
                who[p.author],
                p.published_at.astimezone(viewer.timezone).date(),
                "request" if p.from_request else "other content",
                p.shares_by_network.get("linkedin", 0),
                p.shares_by_network.get("x", 0),
                p.shares_by_network.get("email", 0),
                p.shares,
                p.clicks,
                p.wins,
            )
            for p in found
        ],
    )


async def content_page(
    session: AsyncSession, viewer: Viewer, window: Window, sort: str = "clicks"
) -> Page:
    """Every post with reach in the period, sorted by `sort`."""
    require_workspace(viewer)
    if sort not in SORTS:
        raise BadQuery("Sort by " + ", ".join(SORTS) + ".")
    found = sorted(
        await content.post_reach(session, viewer.workspace_id, window.period), key=SORTS[sort]
    )
    who = await names(session, viewer.workspace_id, [p.author for p in found])
    return Page("content", "Content", (_posts_table(found, who, viewer),))


async def people_page(session: AsyncSession, viewer: Viewer, window: Window) -> Page:
    """Top sharers, experts, requesters and teams of the period."""
    require_workspace(viewer)
    wid = viewer.workspace_id
    everyone = list((await people.people(session, wid, window.period, with_sharers=False)).values())
    # The whole workspace's names and teams in one read: cheaper than a long IN list.
    who: dict[str, Person] = {}
    teams: dict[str, str | None] = {}
    for user, name, team in await rows(
        session,
        select(MEMBER.c.user_id, MEMBER.c.name, MEMBER.c.team).where(MEMBER.c.workspace_id == wid),
    ):
        who[user] = Person(user, name or user)
        teams[user] = team
    sharers = sorted(
        (p for p in everyone if p.shares), key=lambda p: (-p.clicks, -p.shares, p.user_id)
    )
    experts = sorted(
        (p for p in everyone if p.posts or p.post_shares),
        key=lambda p: (-p.post_clicks, -p.post_shares, -p.posts, p.user_id),
    )
    requesters = sorted((p for p in everyone if p.requests), key=lambda p: (-p.requests, p.user_id))
    by_team: dict[str, list[int]] = {}
    for p in everyone:
        team = by_team.setdefault(teams.get(p.user_id) or "No team", [0, 0, 0, 0, 0])
        team[0] += 1
        team[1] += p.shares
        team[2] += p.clicks
        team[3] += p.posts
        team[4] += p.requests
    return Page(
        "people",
        "People and teams",
        (
            Table(
                "sharers",
                "Top sharers",
                (
                    Column("person", "Person"),
                    number("shares", "Shares"),
                    number("clicks", "Clicks"),
                ),
                [(who[p.user_id], p.shares, p.clicks) for p in sharers],
            ),
            Table(
                "experts",
                "Top experts",
                (
                    Column("person", "Person"),
                    number("posts", "Published"),
                    number("shares", "Shares of their posts"),
                    number("clicks", "Clicks on their posts"),
                    number("wins", "Wins on their posts"),
                ),
                [
                    (who[p.user_id], p.posts, p.post_shares, p.post_clicks, p.post_wins)
                    for p in experts
                ],
            ),
            Table(
                "requesters",
                "Top requesters",
                (Column("person", "Person"), number("requests", "Requests")),
                [(who[p.user_id], p.requests) for p in requesters],
            ),
            Table(
                "teams",
                "Teams",
                (
                    Column("team", "Team"),
                    number("people", "People taking part"),
                    number("shares", "Shares"),
                    number("clicks", "Clicks"),
                    number("posts", "Published"),
                    number("requests", "Requests"),
                ),
                [(team, *figures) for team, figures in sorted(by_team.items())],
            ),
        ),
    )


async def person_page(session: AsyncSession, viewer: Viewer, user_id: str, window: Window) -> Page:
    """One person's part: their requests and what became of them, their posts' reach,
    their shares and clicks, their wins."""
    member = await member_of(session, viewer, user_id)
    wid, mid = viewer.workspace_id, member.id or 0
    mine = (await people.people(session, wid, window.period, mid, with_sharers=False)).get(mid)
    figures = mine or people.PersonFigures(member_id=mid, user_id=member.user_id)
    summary = Table(
        "summary",
        "In this period",
        (Column("figure", "Figure"), Column("value", "Value", numeric=True)),
        [
            ("Posts shared (share buttons pressed)", figures.shares),
            ("Clicks on my shares", figures.clicks),
            ("Posts I published", figures.posts),
            ("Shares of my posts", figures.post_shares),
            ("Clicks on my posts", figures.post_clicks),
            ("Wins on my posts", figures.post_wins),
            ("Requests I made", figures.requests),
            ("Wins I logged", figures.wins_logged),
        ],
    )
    outcomes = await people.request_outcomes(session, wid, window.period, requester_id=mid)
    who = await names(session, wid, [o.assignee for o in outcomes if o.assignee])
    requests = Table(
        "requests",
        "My requests and what became of them",
        (
            Column("topic", "Topic"),
            Column("status", "Status"),
            Column("expert", "Expert"),
            Column("post", "Post"),
            Column("shares", "Shares", numeric=True),
            Column("clicks", "Clicks", numeric=True),
            Column("wins", "Wins", numeric=True),
        ),
        [
            (
                o.topic,
                o.status.replace("_", " "),
                who[o.assignee] if o.assignee else None,
                o.post_title,
                o.shares,
                o.clicks,
                o.wins,
            )
            for o in outcomes
        ],
        empty="No request of mine moved in this period.",
    )
    posts = await content.post_reach(session, wid, window.period, author_id=mid)
    authors = await names(session, wid, [p.author for p in posts])
    title = "My page" if member.id == viewer.member_id else f"{member.name or member.user_id}"
    return Page("person", title, (summary, requests, _posts_table(posts, authors, viewer)))
