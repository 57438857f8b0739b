"""Weekly digests: what the loop did last week, posted to each digest channel exactly once.

Schedule. Each workspace chooses a day and a local time (Monday 09:00 by default, in the
workspace time zone). A digest reports on the seven days before its day, from midnight to
midnight, local time; with the default that is the ISO week just ended, and the `week` of
its row is the ISO week of the period's first day.

Exactly once. The worker's sweep (every minute, per workspace) writes a `Digest` row per
channel and week with a unique key, and the channel's message as an outbox row with a
unique dedupe key, in one transaction: two workers, a restart mid-send or a catch-up after
downtime find the row and send nothing more. A scheduled time missed while the bot was down
is sent once, late, when it comes back — only the latest, never a backlog of stale weeks.

Afterwards. The sweep follows each queued digest's outbox row: sent, or refused for good —
then the workspace's admins hear once why (the bot is not in the channel, it was archived)
and the other channels are not affected.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, Scope, channel, dm
from handlers.core.errors import NotAllowed
from handlers.core.interactions import Action, Command, Reply
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import Markup, channel_mention, link, md, mention
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Divider,
    Header,
    Image,
    Message,
    Section,
)
from handlers.core.ports import AI, NO_AI, ChartSeries
from handlers.core.quiet_hours import zone
from handlers.core.wording import clip, plural
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import figures, notes
from handlers.impact.digest_settings import DAYS
from handlers.impact.figures import LoggedWin, OpenRequest, Period, Ranked, Totals
from handlers.requests import demand
from handlers.routing import pings
from handlers.routing.ping_status import PingStatus
from storage import outbox
from storage.models import (
    ContentRequest,
    Digest,
    ExpertProfile,
    Member,
    OutboxMessage,
    Ping,
    random_code,
)
from storage.upsert import insert_ignore

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

WEEKS = 8  # the chart's span
SHOWN = 5  # items of each list in the message; the page shows up to KEPT
KEPT = 50
NOTES = "@notes"  # the Digest "channel" of the week's personal notes
QUEUED, SENT, FAILED = "queued", "sent", "failed"

# What a platform's refusal means, for the admins' message (Slack's error codes; others
# fall back to the platform's own words).
REFUSALS = {
    "not_in_channel": "I'm not a member of that channel. Invite me with `/invite @Flywheel`",
    "is_archived": "the channel was archived",
    "channel_not_found": "I can't find that channel (deleted, or private without me)",
}


# -- the schedule ---------------------------------------------------------------------------


def _local(day: date, at: time, settings: WorkspaceSettings) -> datetime:
    return datetime.combine(day, at, tzinfo=zone(settings.timezone)).astimezone(UTC)


def _clock_time(settings: WorkspaceSettings) -> time:
    hours, minutes = settings.digest_time.split(":")
    return time(int(hours), int(minutes))


def last_scheduled(settings: WorkspaceSettings, now: datetime) -> datetime:
    """The latest scheduled digest time at or before `now`, in UTC."""
    local = now.astimezone(zone(settings.timezone))
    day = local.date() - timedelta(days=(local.weekday() - DAYS.index(settings.digest_day)) % 7)
    at = _local(day, _clock_time(settings), settings)
    return at if at <= now else _local(day - timedelta(days=7), _clock_time(settings), settings)


def next_scheduled(settings: WorkspaceSettings, now: datetime) -> datetime:
    """The first scheduled digest time at or after `now`, in UTC."""
    latest = last_scheduled(settings, now)
    if latest == now:
        return latest
    local_day = latest.astimezone(zone(settings.timezone)).date() + timedelta(days=7)
    return _local(local_day, _clock_time(settings), settings)


def weeks_for(settings: WorkspaceSettings, scheduled: datetime) -> list[Period]:
    """The WEEKS seven-day periods ending at local midnight of the scheduled day, oldest first."""
    day = scheduled.astimezone(zone(settings.timezone)).date()
    midnight = time(0, 0)
    return [
        Period(
            _local(day - timedelta(days=7 * (k + 1)), midnight, settings),
            _local(day - timedelta(days=7 * k), midnight, settings),
        )
        for k in reversed(range(WEEKS))
    ]


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# -- the figures ----------------------------------------------------------------------------


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
    series = await figures.weekly_totals(session, workspace_id, periods)
    ranked = await figures.rankings(session, workspace_id, period, KEPT)
    wins, wins_total = await figures.wins(session, workspace_id, period, KEPT)
    waiting, open_total = await figures.open_requests(session, workspace_id, KEPT)
    first_day = period.start.astimezone(tz).date()
    return Figures(
        week=iso_week(first_day),
        first_day=first_day,
        last_day=first_day + timedelta(days=6),
        weeks=[f"{p.start.astimezone(tz):%d %b}".lstrip("0") for p in periods],
        series=series,
        first_timers=await figures.first_timers(session, workspace_id, period),
        median_seconds=await figures.median_turnaround(session, workspace_id, period),
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
    )


# -- the message ----------------------------------------------------------------------------


def _change(now: int, before: int) -> str:
    if now == before:
        return "same as the week before"
    if before == 0:
        return "up from none the week before"
    arrow = "▲" if now > before else "▼"
    return f"{arrow} {abs(now - before):,} on the week before"


def duration(seconds: float) -> str:
    """A span as people say it: `3 days 4 hours`, `5 hours`, `40 minutes`."""
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return plural(days, "day") + (f" {plural(hours, 'hour')}" if hours else "")
    if hours:
        return plural(hours, "hour")
    return plural(max(minutes, 1), "minute")


def _clip(text: str, limit: int) -> str:
    return clip(" ".join(text.split()), limit)


def _period(f: Figures) -> str:
    if f.first_day.month == f.last_day.month:
        return f"{f.first_day.day} – {f.last_day.day} {f.last_day:%b %Y}"
    return f"{f.first_day.day} {f.first_day:%b} – {f.last_day.day} {f.last_day:%b %Y}"


def _reach(r: Ranked) -> str:
    return f"{plural(r.clicks, 'click')}, {plural(r.shares, 'share')}"


def post_lines(f: Figures, limit: int) -> list[Markup]:
    return [
        md(
            "{}. *{}* by {} — {}",
            i,
            _clip(r.label, 120),
            mention(r.author) if r.author else "someone",
            _reach(r),
        )
        for i, r in enumerate(f.top_posts[:limit], 1)
    ]


def sharer_lines(f: Figures, limit: int) -> list[Markup]:
    return [
        md("{}. {} — {}", i, mention(r.label), _reach(r))
        for i, r in enumerate(f.top_sharers[:limit], 1)
    ]


def expert_lines(f: Figures, limit: int) -> list[Markup]:
    lines = []
    for i, r in enumerate(f.top_experts[:limit], 1):
        published = f", {plural(r.extra, 'post')} published" if r.extra else ""
        lines.append(md("{}. {} — their posts: {}{}", i, mention(r.label), _reach(r), published))
    return lines


def win_line(w: LoggedWin) -> Markup:
    what = {"meeting": "a meeting", "opportunity": "an opportunity", "deal": "a deal"}.get(
        w.kind, "a win"
    )
    where = md(" with *{}*", _clip(w.account, 80)) if w.account else ""
    value = f" ({w.value:,})" if w.value else ""
    post = md(" · helped by *{}*", _clip(w.post, 80)) if w.post else ""
    return md(
        "“{}” — {}, {}{}{}{}",
        _clip(w.description, 300),
        mention(w.member),
        what,
        Markup(where),
        value,
        Markup(post),
    )


def open_line(r: OpenRequest) -> Markup:
    wanted = demand.wanted(r.votes)
    state = " · no expert found yet" if r.status == Status.DECLINED else ""
    return md("*{}*\nasked by {} · {}{}", _clip(r.topic, 150), mention(r.requester), wanted, state)


def chart_alt(f: Figures) -> str:
    """The chart in words: what clients without images show instead."""
    rows = [
        ("shares", [t.shares for t in f.series]),
        ("clicks", [t.clicks for t in f.series]),
        ("participants", [t.participants for t in f.series]),
    ]
    listed = "; ".join(f"{name} {', '.join(str(v) for v in values)}" for name, values in rows)
    return f"The last {len(f.series)} weeks, from {f.weeks[0]}: {listed}."


def chart_series(f: Figures) -> ChartSeries:
    return ChartSeries(
        title=f"The last {len(f.series)} weeks",
        weeks=tuple(f.weeks),
        series=(
            ("Shares", tuple(t.shares for t in f.series)),
            ("Clicks", tuple(t.clicks for t in f.series)),
            ("Participants", tuple(t.participants for t in f.series)),
        ),
    )


def _open_blocks(f: Figures) -> list[Block]:
    blocks: list[Block] = []
    for r in f.open_requests[:SHOWN]:
        blocks.append(
            Section(
                text=open_line(r),
                button=Button(
                    label="I'll take it",
                    action=actions.DIGEST_CLAIM,
                    value=str(r.id),
                    style="primary",
                ),
            )
        )
    return blocks


def message(f: Figures, *, chart_url: str | None, page_url: str | None) -> Message:
    """The digest as a neutral message; lists cut to SHOWN with a link to the whole digest."""
    heading = Header(text=f"Flywheel weekly · {_period(f)}")
    if f.quiet:
        return _quiet(f, heading, page_url)
    this, before = f.this, f.previous
    headline = (
        ("Requests", this.requests, before.requests),
        ("Published posts", this.posts, before.posts),
        ("Shares", this.shares, before.shares),
        ("Clicks", this.clicks, before.clicks),
        ("Wins", this.wins, before.wins),
        ("Active participants", this.participants, before.participants),
    )
    blocks: list[Block] = [
        heading,
        Section(
            fields=tuple(md("*{}*\n{:,}  ({})", name, n, _change(n, b)) for name, n, b in headline)
        ),
    ]
    effect = [
        md(
            "• {} took part, against {:.1f} a week over the four weeks before",
            plural(this.participants, "person", "people"),
            f.average_participants(),
        ),
    ]
    if f.first_timers:
        names = Markup(", ").join(mention(u) for u in f.first_timers[:10])
        more = f" and {len(f.first_timers) - 10} more" if len(f.first_timers) > 10 else ""
        effect.append(md("• First-time contributors: {}{} — welcome!", names, more))
    else:
        effect.append(Markup("• No first-time contributors this week"))
    if this.shares:
        effect.append(md("• {:.1f} clicks per share", this.clicks / this.shares))
    if f.median_seconds is not None:
        effect.append(md("• Median time from request to published: {}", duration(f.median_seconds)))
    blocks.append(Section(text=md("*The network effect*\n{}", Markup("\n").join(effect))))
    if chart_url:
        blocks.append(Image(url=chart_url, alt=chart_alt(f), title="Shares, clicks, participants"))
    else:
        blocks.append(ContextLine(text=chart_alt(f)))
    cut = False
    for title, lines, total in (
        ("Top posts", post_lines(f, SHOWN), f.posts_total),
        ("Top sharers", sharer_lines(f, SHOWN), f.sharers_total),
        ("Top experts", expert_lines(f, SHOWN), f.experts_total),
    ):
        if lines:
            more = md("\n_and {} more_", total - len(lines)) if total > len(lines) else Markup()
            cut = cut or bool(more)
            blocks.append(Section(text=md("*{}*\n{}{}", title, Markup("\n").join(lines), more)))
    if f.wins:
        blocks += [Divider(), Header(text=f"Wins · {f.wins_total}")]
        blocks += [Section(text=win_line(w)) for w in f.wins[:SHOWN]]
        cut = cut or f.wins_total > SHOWN
    blocks += [Divider(), Header(text="Open requests that need an expert")]
    if f.open_requests:
        blocks += _open_blocks(f)
        cut = cut or f.open_total > SHOWN
    else:
        blocks.append(ContextLine(text="None — every request has an expert. Thank you!"))
    blocks.append(_footer(f, page_url, cut))
    text = (
        f"Flywheel weekly, {_period(f)}: {plural(this.requests, 'request')}, "
        f"{plural(this.posts, 'post')} published, {plural(this.shares, 'share')}, "
        f"{plural(this.clicks, 'click')}, {plural(this.wins, 'win')}, "
        f"{plural(this.participants, 'person', 'people')} taking part."
    )
    return Message(text=text, blocks=tuple(blocks))


def _quiet(f: Figures, heading: Header, page_url: str | None) -> Message:
    blocks: list[Block] = [
        heading,
        Section(
            text="A quiet week: no new requests, posts, shares or wins. "
            "Every loop starts again with one question — what do your buyers keep asking?"
        ),
    ]
    if f.open_requests:
        blocks.append(Section(text=Markup("*These colleagues are still waiting for an expert:*")))
        blocks += _open_blocks(f)
    blocks.append(
        Buttons(
            buttons=(Button(label="Request content", action=actions.REQUEST_OPEN, style="primary"),)
        )
    )
    blocks.append(_footer(f, page_url, f.open_total > SHOWN))
    waiting = f" {plural(f.open_total, 'request')} still need an expert." if f.open_total else ""
    return Message(
        text=f"Flywheel weekly, {_period(f)}: a quiet week.{waiting}", blocks=tuple(blocks)
    )


def _footer(f: Figures, page_url: str | None, cut: bool) -> ContextLine:
    if page_url:
        lead = "Lists are cut to the top five. " if cut else ""
        return ContextLine(text=lead + link(page_url, "See the whole digest"))

    return ContextLine(text=f"Week {f.week}.")


def chart_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/c/{code}.png"


def page_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/d/{code}"


# -- the sweep ------------------------------------------------------------------------------


def _key(week: str, where: str) -> str:
    return f"digest:{week}:{where}"


async def sweep(scope: Scope, ai: AI = NO_AI) -> int:
    """Send what is due: each channel's digest and the week's personal notes, once each.

    Also follows digests already queued, telling admins once about a channel that refused.
    Returns how many digests were queued.
    """
    await follow_up(scope)
    settings = workspace_settings.load(scope.workspace)
    if not settings.digest_channels:
        return 0
    scheduled = last_scheduled(settings, scope.now)
    if settings.digests_from and scheduled < datetime.fromisoformat(settings.digests_from):
        return 0
    week = iso_week(
        weeks_for(settings, scheduled)[-1].start.astimezone(zone(settings.timezone)).date()
    )
    wanted = [*dict.fromkeys(settings.digest_channels), NOTES]
    done = set(
        (
            await scope.session.exec(
                select(Digest.channel).where(
                    Digest.workspace_id == scope.workspace_id,
                    Digest.week == week,
                    col(Digest.channel).in_(wanted),
                )
            )
        ).all()
    )
    if all(where in done for where in wanted):
        return 0
    figures = await build(scope.session, scope.workspace_id, settings, scheduled)
    queued = 0
    for where in wanted:
        if where in done:
            continue
        chart_code, page_code = random_code(), random_code()
        inserted = await insert_ignore(
            scope.session,
            Digest.__table__,  # type: ignore[attr-defined]
            {
                "workspace_id": scope.workspace_id,
                "channel": where,
                "week": week,
                "status": SENT if where == NOTES else QUEUED,
                "chart_code": chart_code,
                "page_code": page_code,
                "figures": figures.model_dump(mode="json"),
                "created_at": scope.now,
            },
            ("workspace_id", "channel", "week"),
        )
        if not inserted:
            continue  # another worker got there first
        if where == NOTES:
            sent = await notes.send_all(scope, settings, weeks_for(settings, scheduled)[-1], week)
            log.info("digest.notes_queued", workspace=scope.workspace.external_id, notes=sent)
            continue
        base = scope.config.public_base_url
        quiet = figures.quiet
        await scope.send(
            channel(where),
            message(
                figures,
                chart_url=None if quiet else chart_url(base, chart_code),
                page_url=page_url(base, page_code),
            ),
            key=_key(week, where),
            ref_key=_key(week, where),
        )
        queued += 1
        log.info("digest.queued", workspace=scope.workspace.external_id, channel=where, week=week)
    return queued


async def follow_up(scope: Scope) -> None:
    """Mark queued digests sent or failed from their outbox rows; tell admins of a refusal."""
    waiting = (
        await scope.session.exec(
            select(Digest).where(Digest.workspace_id == scope.workspace_id, Digest.status == QUEUED)
        )
    ).all()
    if not waiting:
        return
    keys = {f"{scope.workspace_id}:{_key(d.week, d.channel)}": d for d in waiting}
    rows = {
        row.dedupe_key: row
        for row in (
            await scope.session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).in_(list(keys)))
            )
        ).all()
    }
    table: Any = Digest.__table__  # type: ignore[attr-defined]
    for key, digest in keys.items():
        row = rows.get(key)
        if row is not None and row.status in (outbox.PENDING, outbox.SENDING):
            continue
        # Sent rows are forgotten after a while; a missing row was sent.
        failed = row is not None and row.status in (outbox.FAILED, outbox.CANCELLED)
        moved = await scope.session.exec(
            update(table)
            .where(table.c.id == digest.id, table.c.status == QUEUED)
            .values(status=FAILED if failed else SENT)
        )
        if failed and moved.rowcount:
            assert row is not None
            await _tell_admins(scope, digest, row.last_error or "")


def refusal(error: str) -> str:
    """Why a channel refused the digest, in words an admin can act on."""
    for code, meaning in REFUSALS.items():
        if code in error:
            return meaning
    if " — " in error:
        # Senders put their own explanation after a dash: "… 403 BotNotInConversationRoster
        # — Flywheel is no longer in that conversation: add the app to the team again".
        return error.split(" — ", 1)[1][:300]
    return f"the platform said: {error[:300] or 'no reason given'}"


async def admins(scope: Scope) -> list[Member]:
    """The workspace's admins this bot knows: platform admins and FLYWHEEL_ADMINS."""
    configured = list(scope.config.admins_in(scope.workspace))
    query = select(Member).where(
        Member.workspace_id == scope.workspace_id,
        col(Member.is_bot).is_(False),
        or_(
            col(Member.is_platform_admin).is_(True),
            col(Member.user_id).in_(configured),
            func.lower(col(Member.email)).in_(configured),
        ),
    )
    return list((await scope.session.exec(query.order_by(col(Member.id)))).all())


async def _tell_admins(scope: Scope, digest: Digest, error: str) -> None:
    why = refusal(error)
    text = md(
        "I couldn't post the weekly digest ({}) in {}: {}. "
        "The other digest channels got theirs; choose the channels with `admin`.",
        digest.week,
        channel_mention(digest.channel),
        why,
    )
    notice = Message(
        text=text,
        blocks=(Section(text=text), ContextLine(text="I'll try that channel again next week.")),
    )
    people = await admins(scope)
    for person in people:
        await scope.send(
            dm(person.user_id),
            notice,
            key=f"{_key(digest.week, digest.channel)}:refused:{person.id}",
        )
    settings = workspace_settings.load(scope.workspace)
    if not people and settings.escalation_channel and settings.escalation_channel != digest.channel:
        await scope.send(
            channel(settings.escalation_channel),
            notice,
            key=f"{_key(digest.week, digest.channel)}:refused",
        )
    log.warning(
        "digest.refused",
        workspace=scope.workspace.external_id,
        channel=digest.channel,
        week=digest.week,
        error=error[:200],
        admins=len(people),
    )


# -- preview, page and chart ----------------------------------------------------------------


async def preview(
    session: AsyncSession, workspace_id: int, settings: WorkspaceSettings, now: datetime
) -> Message:
    """The coming digest, as it stands now (without its chart, which is drawn when sent)."""
    scheduled = next_scheduled(settings, now)
    figures = await build(session, workspace_id, settings, scheduled)
    when = scheduled.astimezone(zone(settings.timezone))
    channels = Markup(", ").join(channel_mention(c) for c in settings.digest_channels)
    where = (
        md("in {}", channels)
        if channels
        else Markup("nowhere yet: an admin chooses digest channels in `admin`")
    )

    shown = message(figures, chart_url=None, page_url=None)
    lead = ContextLine(
        text=md(
            "Preview, only for you. It goes out {} ({}) {}; the figures will move until then.",
            f"{when:%A %d %B at %H:%M}",
            settings.timezone,
            where,
        )
    )
    return Message(text=Markup("Preview: ") + shown.text, blocks=(lead, *shown.blocks))


async def show_preview(ctx: Context, command: Command) -> Reply:
    """`digest preview`: the coming digest, to the person who asked only."""
    if command.text.strip().lower() not in ("preview", ""):
        return Reply.say("Try `digest preview`: it shows the coming weekly digest, to you only.")
    settings = workspace_settings.load(ctx.workspace)
    return Reply(
        message=await preview(ctx.session, ctx.workspace_id, settings, ctx.now), private=True
    )


async def by_code(
    session: AsyncSession, *, chart: str | None = None, page: str | None = None
) -> Digest | None:
    """The digest with this chart or page code, or None."""
    query = select(Digest).where(
        Digest.chart_code == chart if chart is not None else Digest.page_code == page,
        Digest.channel != NOTES,
    )
    return (await session.exec(query)).first()


def figures_of(digest: Digest) -> Figures | None:
    return None if digest.figures is None else Figures.model_validate(digest.figures)


# -- taking a request from the digest --------------------------------------------------------


async def claim(ctx: Context, action: Action) -> Reply:
    """`digest_claim`: a reader with an expert profile takes an open request from the digest.

    The claim is recorded as a ping the reader answered at once, so it is the same claim a
    pinged expert makes (pings.claim): the first claim wins, the other experts' pings are
    withdrawn, the requester hears, and the claimant gets the drafting buttons in a DM.
    """
    request = await lookup.get(ctx, ContentRequest, action.value, REQUEST_GONE)
    if request.requester_id == ctx.member_id:
        raise NotAllowed(
            "You asked for this one, so it's for a colleague to answer. "
            "Share it with someone who knows the topic!"
        )
    profile = (
        await ctx.session.exec(
            select(ExpertProfile).where(ExpertProfile.member_id == ctx.member_id)
        )
    ).first()
    if profile is None:
        raise NotAllowed(
            "Requests are taken by experts. Tell me what you know with `expert` "
            "(it takes a minute), then press the button again."
        )
    if request.status == Status.DECLINED:
        # No expert was found: a volunteer reopens it, then claims it like anyone else.
        await move(ctx.session, request, Status.OPEN, ctx.now)
    settings = workspace_settings.load(ctx.workspace)
    rounds = (
        await ctx.session.exec(
            select(func.coalesce(func.max(Ping.round), 0)).where(Ping.request_id == request.id)
        )
    ).one()
    if await insert_ignore(
        ctx.session,
        Ping.__table__,  # type: ignore[attr-defined]
        {
            "workspace_id": ctx.workspace_id,
            "request_id": request.id,
            "member_id": ctx.member_id,
            "round": int(rounds) + 1,
            "status": PingStatus.PENDING,
            "reasons": ["you took it from the weekly digest"],
            "deliver_at": ctx.now,
            "expires_at": ctx.now + timedelta(hours=settings.ping_timeout_hours),
            "created_at": ctx.now,
        },
        ("request_id", "member_id"),
    ):
        mine = (
            await ctx.session.exec(
                select(Ping).where(Ping.request_id == request.id, Ping.member_id == ctx.member_id)
            )
        ).one()
        # The DM the claim edits into the drafting buttons, as it edits a ping.
        await ctx.send(
            dm(ctx.member.user_id),
            Message(text=f"You're taking “{request.topic}” from the weekly digest."),
            key=f"ping:{mine.id}",
            ref_key=f"ping:{mine.id}",
        )
    return await pings.claim(ctx, action)


def register(router: Router) -> None:
    router.command(
        "digest", usage="digest preview", summary="the coming weekly digest, shown to me only"
    )(show_preview)
    router.action(actions.DIGEST_CLAIM)(claim)


async def names(session: AsyncSession, workspace_id: int, f: Figures) -> dict[str, str]:
    """Display names of everyone a digest mentions, by user id (the id where none is known)."""
    users = {
        *f.first_timers,
        *(r.author for r in f.top_posts if r.author),
        *(r.label for r in f.top_sharers),
        *(r.label for r in f.top_experts),
        *(w.member for w in f.wins),
        *(r.requester for r in f.open_requests),
    }
    if not users:
        return {}
    query = select(Member.user_id, Member.name).where(
        Member.workspace_id == workspace_id, col(Member.user_id).in_(sorted(users))
    )
    return {user: name or user for user, name in (await session.exec(query)).all()}
