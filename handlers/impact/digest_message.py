"""A digest as a neutral message: the headline numbers against the week before, the network
effect, the chart, the top lists, the wins, and the open requests an expert can take."""

from __future__ import annotations

from handlers.core import actions
from handlers.core.lifecycle import Status
from handlers.core.markup import Markup, link, md, mention
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
from handlers.core.ports import ChartSeries
from handlers.core.wording import clip, plural
from handlers.impact.digest_figures import Figures
from handlers.impact.rankings import LoggedWin, OpenRequest, Ranked
from handlers.requests import demand

SHOWN = 5  # items of each list in the message; the page shows up to digest_figures.KEPT


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
    took_part = plural(this.participants, "person", "people")
    average = f.average_participants()
    effect = [
        md(
            "• {} took part, against {} a week over the four weeks before",
            took_part,
            f"{average:.1f}".removesuffix(".0"),
        )
        if average
        else md("• {} took part, where nobody did in the four weeks before", took_part),
    ]
    if f.first_timers:
        names = Markup(", ").join(mention(u) for u in f.first_timers[:10])
        more = f" and {len(f.first_timers) - 10} more" if len(f.first_timers) > 10 else ""
        effect.append(md("• First-time contributors: {}{} — welcome!", names, more))
    else:
        effect.append(Markup("• No first-time contributors this week"))
    if this.posts:
        effect.append(
            md(
                "• Of the posts, {} came from requests and {} from shared links and feeds",
                this.posts - this.outside_posts,
                this.outside_posts,
            )
        )
    if this.shares:
        effect.append(md("• {:.1f} clicks per share", this.clicks / this.shares))
    if f.linkedin_posts:
        effect.append(
            md(
                "• {} on LinkedIn from Flywheel, confirmed by LinkedIn",
                plural(f.linkedin_posts, "post"),
            )
        )
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
        program = page_url.rsplit("/d/", 1)[0] + "/program"
        return ContextLine(
            text=lead
            + link(page_url, "See the whole digest")
            + " · "
            + link(program, "The program over time")
        )

    return ContextLine(text=f"Week {f.week}.")


def chart_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/c/{code}.png"


def page_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/d/{code}"
