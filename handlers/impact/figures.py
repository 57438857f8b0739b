"""What the loop did, in numbers: the figures of digests, personal notes and `stats`.

Every figure is an SQL aggregate (counts, distinct counts, a median by window functions),
written so that SQLite and PostgreSQL give the same answer; Python only arranges the few
rows that come back. Periods are half-open, [start, end), in UTC.

A click counts when it is neither a preview nor a repeat (see handlers/tracking.py). Clicks
are read from the tally the click writer keeps per day in the workspace's time zone: a
period's whole local days add up tally rows, and only the part of a day a period covers
partly (`stats` runs until now) counts click rows. The digest's weeks run from local
midnight to local midnight, so they read the tally alone, and their totals read the tally's
days added up (`daily_clicks`): one row a day.

A participant is anyone who, in the period, asked for content, +1'd a request, claimed one,
published a post, shared one or logged a win; clicks come from outside and do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.lifecycle import Status
from handlers.sharing import tracking
from storage.models import (
    Click,
    ClickTally,
    ContentRequest,
    DailyClicks,
    Member,
    Post,
    Share,
    Vote,
    Win,
)
from storage.upsert import on_postgres

_share: Any = Share.__table__  # type: ignore[attr-defined]
_click: Any = Click.__table__  # type: ignore[attr-defined]
_tally: Any = ClickTally.__table__  # type: ignore[attr-defined]
_daily: Any = DailyClicks.__table__  # type: ignore[attr-defined]
_win: Any = Win.__table__  # type: ignore[attr-defined]
_post: Any = Post.__table__  # type: ignore[attr-defined]
_request: Any = ContentRequest.__table__  # type: ignore[attr-defined]
_vote: Any = Vote.__table__  # type: ignore[attr-defined]
_member: Any = Member.__table__  # type: ignore[attr-defined]

# Requests that still need an expert: nobody took them yet, or nobody could.
NEEDS_EXPERT = (Status.OPEN.value, Status.DECLINED.value)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Totals:
    """One period's headline numbers."""

    requests: int = 0
    posts: int = 0
    shares: int = 0
    clicks: int = 0
    wins: int = 0
    participants: int = 0


@dataclass(frozen=True, slots=True)
class Ranked:
    """A post, sharer or expert with what it did in the period."""

    id: int
    label: str  # a post's title; a person's platform user id
    shares: int
    clicks: int
    extra: int = 0  # experts: posts published in the period
    author: str | None = None  # posts: the author's user id


@dataclass(frozen=True, slots=True)
class LoggedWin:
    member: str
    kind: str
    account: str
    description: str
    value: int | None
    post: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenRequest:
    id: int
    topic: str
    requester: str
    status: str
    votes: int
    created_at: datetime


async def _rows(session: AsyncSession, statement: Any) -> list[Any]:
    return list((await session.exec(statement)).all())


def _counted(table: Any) -> Any:
    return and_(table.c.is_preview == false(), table.c.is_repeat == false())


def _bucket(column: Any, periods: Sequence[Period]) -> Any:
    """The index of the period `column` falls in (periods are consecutive and ordered)."""
    return case(*((column < p.end, i) for i, p in enumerate(periods)), else_=None)


def _within(column: Any, start: datetime, end: datetime) -> Any:
    return and_(column >= start, column < end)


# -- clicks: the tally for whole days, click rows for parts of days -------------------------


@dataclass(frozen=True, slots=True)
class _Days:
    """A period as the tally sees it: whole local days [first, last), and the rest."""

    first: date
    last: date
    partial: tuple[Period, ...]  # parts of days the period covers only partly


async def _zone(session: AsyncSession, workspace_id: int) -> ZoneInfo:
    """The zone the tally's days are in: the stored one, read once per unit of work."""
    known: dict[int, ZoneInfo] = session.info.setdefault("tally_zones", {})
    if workspace_id not in known:
        known.update(await tracking.tally_zones(session, [workspace_id]))
    return known[workspace_id]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _days(period: Period, tz: ZoneInfo) -> _Days:
    first = period.start.astimezone(tz).date()
    if _midnight(first, tz) < period.start:
        first += timedelta(days=1)
    last = period.end.astimezone(tz).date()
    if last <= first:
        return _Days(first, first, (period,))
    partial = []
    if period.start < _midnight(first, tz):
        partial.append(Period(period.start, _midnight(first, tz)))
    if _midnight(last, tz) < period.end:
        partial.append(Period(_midnight(last, tz), period.end))
    return _Days(first, last, tuple(partial))


def _clicks(workspace_id: int, days: _Days, *keys: str) -> Any:
    """Counted clicks of a period as rows of (*keys, clicks), to be added up by the caller."""
    parts: list[Select[Any]] = []
    if days.first < days.last:
        parts.append(
            select(*(_tally.c[k] for k in keys), _tally.c.clicks.label("clicks")).where(
                _tally.c.workspace_id == workspace_id,
                _tally.c.day >= days.first,
                _tally.c.day < days.last,
            )
        )
    parts += [
        select(*(_click.c[k] for k in keys), literal(1).label("clicks")).where(
            _click.c.workspace_id == workspace_id,
            _within(_click.c.at, part.start, part.end),
            _counted(_click),
        )
        for part in days.partial
    ]
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


async def _click_totals(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[int]:
    """Counted clicks of each period: the day totals of whole days, plus any partial days."""
    tz = await _zone(session, workspace_id)
    spans = [_days(p, tz) for p in periods]
    totals = [0] * len(periods)
    whole = [(i, d) for i, d in enumerate(spans) if d.first < d.last]
    if whole:
        by_day = select(_daily.c.day, _daily.c.clicks).where(
            _daily.c.workspace_id == workspace_id,
            _daily.c.day >= min(d.first for _, d in whole),
            _daily.c.day < max(d.last for _, d in whole),
        )
        for day, n in await _rows(session, by_day):
            # SQLite hands dates back as text.
            day = date.fromisoformat(day) if isinstance(day, str) else day
            for i, d in whole:
                if d.first <= day < d.last:
                    totals[i] += int(n)
    partial = [
        select(literal(i).label("i"), func.count().label("n")).where(
            _click.c.workspace_id == workspace_id,
            _within(_click.c.at, part.start, part.end),
            _counted(_click),
        )
        for i, d in enumerate(spans)
        for part in d.partial
    ]
    if partial:
        for i, n in await _rows(session, union_all(*partial)):
            totals[int(i)] += int(n)
    return totals


def _acts(workspace_id: int, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """(member_id, at) of every act of participation by kind, optionally within [start, end)."""

    def part(member: Any, at: Any, table: Any, *extra: Any) -> Select[Any]:
        conditions = [table.c.workspace_id == workspace_id, *extra]
        if start is not None and end is not None:
            conditions.append(_within(at, start, end))
        return select(member.label("member_id"), at.label("at")).where(*conditions)

    return {
        "requests": part(_request.c.requester_id, _request.c.created_at, _request),
        "votes": part(_vote.c.member_id, _vote.c.created_at, _vote),
        "claims": part(
            _request.c.assignee_id,
            _request.c.claimed_at,
            _request,
            _request.c.assignee_id.is_not(None),
            _request.c.claimed_at.is_not(None),
        ),
        "posts": part(_post.c.author_id, _post.c.published_at, _post),
        "shares": part(_share.c.member_id, _share.c.at, _share),
        "wins": part(_win.c.member_id, _win.c.at, _win),
    }


def _activity(workspace_id: int, start: datetime | None, end: datetime | None) -> Any:
    """Every act of participation as one (member_id, at) subquery."""
    return union_all(*_acts(workspace_id, start, end).values()).subquery()


async def weekly_totals(
    session: AsyncSession, workspace_id: int, periods: Sequence[Period]
) -> list[Totals]:
    """Headline numbers for consecutive periods (the digest's weeks), in a few statements."""
    if not periods:
        return []
    start, end = periods[0].start, periods[-1].end

    def counted(name: str, table: Any, at: Any, *extra: Any) -> Select[Any]:
        # Rows before each period's end, in one pass without grouping: each week's count is
        # the difference of two of these (a CASE bucket and a GROUP BY cost twice as much).
        before = [func.count().filter(at < p.end) for p in periods]
        return select(literal(name).label("figure"), *before).where(
            table.c.workspace_id == workspace_id, _within(at, start, end), *extra
        )

    statement = union_all(
        counted("requests", _request, _request.c.created_at),
        counted("posts", _post, _post.c.published_at),
        counted("shares", _share, _share.c.at),
        counted("wins", _win, _win.c.at),
    )
    figures: list[dict[str, int]] = [{} for _ in periods]
    for name, *cumulative in await _rows(session, statement):
        previous = 0
        for i, total in enumerate(cumulative):
            figures[i][name] = int(total or 0) - previous
            previous = int(total or 0)
    for i, n in enumerate(await _click_totals(session, workspace_id, periods)):
        figures[i]["clicks"] = n
    acts = _activity(workspace_id, start, end)
    bucket = _bucket(acts.c.at, periods)
    # Each (week, person) once, then people per week: a hashed GROUP BY, where a count
    # (DISTINCT) per week would sort every act of the eight weeks.
    pairs = (
        select(bucket.label("bucket"), acts.c.member_id)
        .group_by(bucket, acts.c.member_id)
        .subquery()
    )
    people = select(pairs.c.bucket, func.count()).group_by(pairs.c.bucket)
    for bucket, n in await _rows(session, people):
        if bucket is not None:
            figures[int(bucket)]["participants"] = int(n)
    return [Totals(**f) for f in figures]


async def first_timers(session: AsyncSession, workspace_id: int, period: Period) -> list[str]:
    """User ids of the people whose first act of participation ever fell in the period."""
    kinds = _acts(workspace_id, None, None)
    # Shares are most of all activity: each member's first is one probe of the share index
    # on (member_id, at), so this follows the number of members, not the years of shares.
    first_share = (
        select(func.min(_share.c.at))
        .where(_share.c.workspace_id == workspace_id, _share.c.member_id == _member.c.id)
        .scalar_subquery()
    )
    kinds["shares"] = select(_member.c.id.label("member_id"), first_share.label("at")).where(
        _member.c.workspace_id == workspace_id
    )
    acts = union_all(*kinds.values()).subquery()
    first = (
        select(acts.c.member_id, func.min(acts.c.at).label("first"))
        .group_by(acts.c.member_id)
        .subquery()
    )
    query = (
        select(_member.c.user_id)
        .join(first, first.c.member_id == _member.c.id)
        .where(first.c.first >= period.start, first.c.first < period.end)
        .order_by(first.c.first, _member.c.user_id)
    )
    return [row[0] for row in await _rows(session, query)]


def _seconds_between(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if on_postgres(session):
        return func.round(cast(func.extract("epoch", later - earlier), Float))
    # SQLite keeps naive UTC text: julianday reads it; a day is 86,400 seconds.
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0)


async def median_turnaround(
    session: AsyncSession, workspace_id: int, period: Period
) -> float | None:
    """Median seconds from request to published, over the posts published in the period."""
    seconds = _seconds_between(session, _post.c.published_at, _request.c.created_at)
    durations = (
        select(
            seconds.label("d"),
            func.row_number().over(order_by=seconds).label("rn"),
            func.count().over().label("n"),
        )
        .select_from(_post.join(_request, _request.c.id == _post.c.request_id))
        .where(
            _post.c.workspace_id == workspace_id,
            _within(_post.c.published_at, period.start, period.end),
        )
        .subquery()
    )
    # The middle row, or the mean of the two middle rows: integer division in both databases.
    query = select(func.avg(durations.c.d)).where(
        or_(
            durations.c.rn == (durations.c.n + 1) // 2,
            durations.c.rn == (durations.c.n + 2) // 2,
        )
    )
    value = (await _rows(session, query))[0][0]
    return None if value is None else float(value)


def _reach(workspace_id: int, period: Period, days: _Days, key: str) -> Select[Any]:
    """Shares and counted clicks in the period, grouped by `key` (post_id or member_id)."""
    shares = (
        select(
            _share.c[key].label("k"),
            func.count().label("shares"),
            literal(0).label("clicks"),
        )
        .where(
            _share.c.workspace_id == workspace_id, _within(_share.c.at, period.start, period.end)
        )
        .group_by(_share.c[key])
    )
    counted = _clicks(workspace_id, days, key)
    clicks = select(
        counted.c[key].label("k"),
        literal(0).label("shares"),
        func.sum(counted.c.clicks).label("clicks"),
    ).group_by(counted.c[key])
    both = union_all(shares, clicks).subquery()
    return select(
        both.c.k.label("k"),
        cast(func.sum(both.c.shares), Integer).label("shares"),
        cast(func.sum(both.c.clicks), Integer).label("clicks"),
    ).group_by(both.c.k)


def _by_author(workspace_id: int, period: Period, days: _Days) -> Any:
    """Per author: shares of and clicks on their posts in the period, and posts published."""
    reach = _reach(workspace_id, period, days, "post_id").subquery()
    reached = (
        select(
            _post.c.author_id.label("author"),
            reach.c.shares.label("shares"),
            reach.c.clicks.label("clicks"),
            literal(0).label("published"),
        )
        .join(reach, reach.c.k == _post.c.id)
        .where(_post.c.workspace_id == workspace_id)
    )
    published = select(
        _post.c.author_id.label("author"),
        literal(0).label("shares"),
        literal(0).label("clicks"),
        literal(1).label("published"),
    ).where(
        _post.c.workspace_id == workspace_id,
        _within(_post.c.published_at, period.start, period.end),
    )
    both = union_all(reached, published).subquery()
    return (
        select(
            both.c.author.label("author"),
            cast(func.sum(both.c.shares), Integer).label("shares"),
            cast(func.sum(both.c.clicks), Integer).label("clicks"),
            cast(func.sum(both.c.published), Integer).label("published"),
        )
        .group_by(both.c.author)
        .subquery()
    )


@dataclass(frozen=True, slots=True)
class Rankings:
    posts: list[Ranked]
    posts_total: int
    sharers: list[Ranked]
    sharers_total: int
    experts: list[Ranked]
    experts_total: int


async def rankings(
    session: AsyncSession, workspace_id: int, period: Period, limit: int
) -> Rankings:
    """Top posts, sharers and experts of the period, and how many of each, in one statement.

    Shares and tallied clicks are added up by post and by sharer, a few thousand groups
    each; experts are ranked from the posts' figures, so the clicks are read once per key.
    """
    days = _days(period, await _zone(session, workspace_id))
    by_post = _reach(workspace_id, period, days, "post_id").cte("by_post")
    by_sharer = _reach(workspace_id, period, days, "member_id").subquery()
    author = _member.alias("author")
    posts = (
        select(
            literal("post").label("kind"),
            _post.c.id.label("id"),
            _post.c.title.label("label"),
            author.c.user_id.label("author"),
            by_post.c.shares.label("shares"),
            by_post.c.clicks.label("clicks"),
            literal(0).label("extra"),
            func.count().over().label("total"),
        )
        .join(_post, _post.c.id == by_post.c.k)
        .join(author, author.c.id == _post.c.author_id)
        .order_by(by_post.c.clicks.desc(), by_post.c.shares.desc(), _post.c.id)
        .limit(limit)
        .subquery()
    )
    sharers = (
        select(
            literal("sharer").label("kind"),
            _member.c.id.label("id"),
            _member.c.user_id.label("label"),
            null().label("author"),
            by_sharer.c.shares.label("shares"),
            by_sharer.c.clicks.label("clicks"),
            literal(0).label("extra"),
            func.count().over().label("total"),
        )
        .join(_member, _member.c.id == by_sharer.c.k)
        .order_by(by_sharer.c.clicks.desc(), by_sharer.c.shares.desc(), _member.c.user_id)
        .limit(limit)
        .subquery()
    )
    by_author = union_all(
        select(
            _post.c.author_id.label("author_id"),
            by_post.c.shares.label("shares"),
            by_post.c.clicks.label("clicks"),
            literal(0).label("published"),
        ).join(_post, _post.c.id == by_post.c.k),
        select(
            _post.c.author_id.label("author_id"),
            literal(0).label("shares"),
            literal(0).label("clicks"),
            literal(1).label("published"),
        ).where(
            _post.c.workspace_id == workspace_id,
            _within(_post.c.published_at, period.start, period.end),
        ),
    ).subquery()
    a_shares, a_clicks = func.sum(by_author.c.shares), func.sum(by_author.c.clicks)
    a_published = func.sum(by_author.c.published)
    experts = (
        select(
            literal("expert").label("kind"),
            _member.c.id.label("id"),
            _member.c.user_id.label("label"),
            null().label("author"),
            a_shares.label("shares"),
            a_clicks.label("clicks"),
            a_published.label("extra"),
            func.count().over().label("total"),
        )
        .join(_member, _member.c.id == by_author.c.author_id)
        .group_by(_member.c.id, _member.c.user_id)
        .order_by(a_clicks.desc(), a_shares.desc(), a_published.desc(), _member.c.user_id)
        .limit(limit)
        .subquery()
    )
    everything = union_all(*(select(q) for q in (posts, sharers, experts)))
    found: dict[str, list[Ranked]] = {"post": [], "sharer": [], "expert": []}
    totals: dict[str, int] = {}
    for kind, i, label, by, s, c, extra, total in await _rows(session, everything):
        found[kind].append(
            Ranked(
                id=int(i), label=label, shares=int(s), clicks=int(c), extra=int(extra), author=by
            )
        )
        totals[kind] = int(total)
    # The union keeps no order: each list is put back in the order its LIMIT ranked it by.
    found["post"].sort(key=lambda r: (-r.clicks, -r.shares, r.id))
    found["sharer"].sort(key=lambda r: (-r.clicks, -r.shares, r.label))
    found["expert"].sort(key=lambda r: (-r.clicks, -r.shares, -r.extra, r.label))
    return Rankings(
        found["post"],
        totals.get("post", 0),
        found["sharer"],
        totals.get("sharer", 0),
        found["expert"],
        totals.get("expert", 0),
    )


async def wins(
    session: AsyncSession, workspace_id: int, period: Period, limit: int
) -> tuple[list[LoggedWin], int]:
    """Wins logged in the period, newest first, and how many there were."""
    in_period = and_(
        _win.c.workspace_id == workspace_id, _within(_win.c.at, period.start, period.end)
    )
    query = (
        select(
            _member.c.user_id,
            _win.c.kind,
            _win.c.account,
            _win.c.description,
            _win.c.value,
            _post.c.title,
            _win.c.at,
        )
        .join(_member, _member.c.id == _win.c.member_id)
        .outerjoin(_post, _post.c.id == _win.c.post_id)
        .where(in_period)
        .order_by(_win.c.at.desc(), _win.c.id.desc())
        .limit(limit)
    )
    logged = [LoggedWin(*row) for row in await _rows(session, query)]
    return logged, await _count(session, select(func.count()).select_from(_win).where(in_period))


async def open_requests(
    session: AsyncSession, workspace_id: int, limit: int
) -> tuple[list[OpenRequest], int]:
    """Requests that still need an expert, most wanted first, and how many there are."""
    votes = (
        select(_vote.c.request_id, func.count().label("votes"))
        .where(_vote.c.workspace_id == workspace_id)
        .group_by(_vote.c.request_id)
        .subquery()
    )
    waiting = and_(_request.c.workspace_id == workspace_id, _request.c.status.in_(NEEDS_EXPERT))
    n_votes = func.coalesce(votes.c.votes, 0)
    query = (
        select(
            _request.c.id,
            _request.c.topic,
            _member.c.user_id,
            _request.c.status,
            n_votes,
            _request.c.created_at,
        )
        .join(_member, _member.c.id == _request.c.requester_id)
        .outerjoin(votes, votes.c.request_id == _request.c.id)
        .where(waiting)
        .order_by(n_votes.desc(), _request.c.created_at, _request.c.id)
        .limit(limit)
    )
    found = [
        OpenRequest(id=i, topic=t, requester=u, status=s, votes=int(v), created_at=c)
        for i, t, u, s, v, c in await _rows(session, query)
    ]
    return found, await _count(session, select(func.count()).select_from(_request).where(waiting))


async def _count(session: AsyncSession, query: Any) -> int:
    return int((await _rows(session, query))[0][0] or 0)


# -- per person ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonFigures:
    """What one person's part of the loop did in a period."""

    member_id: int
    user_id: str
    # as a sharer
    shares: int = 0
    clicks: int = 0
    # as an author: reach of their posts, wins on them, and who shared them
    post_shares: int = 0
    post_clicks: int = 0
    post_wins: int = 0
    sharers: tuple[str, ...] = ()
    # as a requester, and wins they logged
    requests: int = 0
    posts: int = 0
    wins_logged: int = 0


async def people(
    session: AsyncSession, workspace_id: int, period: Period, member_id: int | None = None
) -> dict[int, PersonFigures]:
    """Per person (or for one), what their shares, posts, requests and wins did."""
    figures: dict[int, dict[str, Any]] = {}

    def add(member: int, **values: Any) -> None:
        figures.setdefault(member, {}).update(values)

    def only(column: Any) -> list[Any]:
        return [] if member_id is None else [column == member_id]

    days = _days(period, await _zone(session, workspace_id))
    sharing = _reach(workspace_id, period, days, "member_id").subquery()
    for k, s, c in await _rows(
        session,
        select(sharing.c.k, sharing.c.shares, sharing.c.clicks).where(*only(sharing.c.k)),
    ):
        add(int(k), shares=int(s), clicks=int(c))
    authors = _by_author(workspace_id, period, days)
    for author, s, c, published in await _rows(
        session,
        select(authors.c.author, authors.c.shares, authors.c.clicks, authors.c.published).where(
            *only(authors.c.author)
        ),
    ):
        add(int(author), post_shares=int(s), post_clicks=int(c), posts=int(published))
    post_wins = (
        select(_post.c.author_id, func.count())
        .join(_win, _win.c.post_id == _post.c.id)
        .where(
            _post.c.workspace_id == workspace_id,
            _within(_win.c.at, period.start, period.end),
            *only(_post.c.author_id),
        )
        .group_by(_post.c.author_id)
    )
    for author, n in await _rows(session, post_wins):
        add(int(author), post_wins=int(n))
    sharers = (
        select(_post.c.author_id, _member.c.user_id)
        .join(_share, _share.c.post_id == _post.c.id)
        .join(_member, _member.c.id == _share.c.member_id)
        .where(
            _post.c.workspace_id == workspace_id,
            _within(_share.c.at, period.start, period.end),
            _share.c.member_id != _post.c.author_id,
            *only(_post.c.author_id),
        )
        .group_by(_post.c.author_id, _member.c.user_id)
        .order_by(_post.c.author_id, func.count().desc(), _member.c.user_id)
    )
    names: dict[int, list[str]] = {}
    for author, user in await _rows(session, sharers):
        names.setdefault(int(author), []).append(user)
    for author, users in names.items():
        add(author, sharers=tuple(users))
    asked = (
        select(_request.c.requester_id, func.count())
        .where(
            _request.c.workspace_id == workspace_id,
            _within(_request.c.created_at, period.start, period.end),
            *only(_request.c.requester_id),
        )
        .group_by(_request.c.requester_id)
    )
    for member, n in await _rows(session, asked):
        add(int(member), requests=int(n))
    logged = (
        select(_win.c.member_id, func.count())
        .where(
            _win.c.workspace_id == workspace_id,
            _within(_win.c.at, period.start, period.end),
            *only(_win.c.member_id),
        )
        .group_by(_win.c.member_id)
    )
    for member, n in await _rows(session, logged):
        add(int(member), wins_logged=int(n))
    if not figures:
        return {}
    user_ids: dict[int, str] = dict(
        await _rows(
            session,
            select(_member.c.id, _member.c.user_id).where(_member.c.id.in_(list(figures))),
        )
    )
    return {
        m: PersonFigures(member_id=m, user_id=user_ids[m], **values)
        for m, values in figures.items()
        if m in user_ids
    }


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What became of a request, for the person who asked."""

    request_id: int
    requester_id: int
    topic: str
    status: str
    assignee: str | None
    post_title: str | None
    shares: int
    clicks: int
    wins: int


async def request_outcomes(
    session: AsyncSession, workspace_id: int, period: Period
) -> list[RequestOutcome]:
    """Requests that moved in the period: asked, claimed, published, or whose post travelled."""
    days = _days(period, await _zone(session, workspace_id))
    reach = _reach(workspace_id, period, days, "post_id").subquery()
    post_wins = (
        select(_win.c.post_id.label("post_id"), func.count().label("wins"))
        .where(
            _win.c.workspace_id == workspace_id,
            _win.c.post_id.is_not(None),
            _within(_win.c.at, period.start, period.end),
        )
        .group_by(_win.c.post_id)
        .subquery()
    )
    assignee = _member.alias("assignee")
    query = (
        select(
            _request.c.id,
            _request.c.requester_id,
            _request.c.topic,
            _request.c.status,
            assignee.c.user_id,
            _post.c.title,
            func.coalesce(reach.c.shares, 0),
            func.coalesce(reach.c.clicks, 0),
            func.coalesce(post_wins.c.wins, 0),
        )
        .outerjoin(assignee, assignee.c.id == _request.c.assignee_id)
        .outerjoin(_post, _post.c.request_id == _request.c.id)
        .outerjoin(reach, reach.c.k == _post.c.id)
        .outerjoin(post_wins, post_wins.c.post_id == _post.c.id)
        .where(
            _request.c.workspace_id == workspace_id,
            or_(
                _within(_request.c.created_at, period.start, period.end),
                _within(_request.c.claimed_at, period.start, period.end),
                _within(_post.c.published_at, period.start, period.end),
                reach.c.k.is_not(None),
                post_wins.c.post_id.is_not(None),
            ),
        )
        .order_by(_request.c.requester_id, _request.c.id)
    )
    return [
        RequestOutcome(i, r, t, s, a, title, int(sh), int(cl), int(w))
        for i, r, t, s, a, title, sh, cl, w in await _rows(session, query)
    ]
