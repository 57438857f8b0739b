"""Feeds: admins add RSS, Atom and JSON feeds; new items become posts, reviewed or not.

Adding a feed never floods anyone: the items already in it when it is added are recorded
as seen and never distributed. Polling is a job of the scheduler's leader (it fetches
outside any transaction), each feed at its workspace's interval, with conditional GET;
failures back off, and a feed that keeps failing (or stops being a feed) is paused and
every admin of the workspace is told once, with the reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlmodel import col, func, or_, select

from handlers.content import feed_format, links, publish, text, urls
from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Config, Context, Scope, dm
from handlers.core.errors import DomainError, FormInvalid, InvalidTransition, NotAllowed
from handlers.core.interactions import NO_REPLY, Action, Command, Reply, Submission
from handlers.core.markup import md
from handlers.core.members import is_admin
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Divider,
    Form,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
    notice,
)
from handlers.core.ports import AI, Clock, Fetched, Fetcher, FetchError
from storage.db import SessionFactory, transaction
from storage.models import ContentLink, Feed, FeedItem, Member, Workspace

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

FORM_ID = "feed_form"
FEEDS_MAX = 50
FAILURES_TO_PAUSE = 5
BACKOFF_MAX = timedelta(hours=24)
# Feeds fetched at once by one poll, and feeds one poll takes on.
CONCURRENCY = 20
POLL_BATCH = 1000
# New items taken from one answer of one feed; more wait for the next poll.
NEW_ITEMS_MAX = 20
AUDIENCES = {"everyone": "everyone opted in", "interests": "matching interests"}
FEED_GONE = "I can't find that feed any more — see `feeds`."


def _require_admin(ctx: Context) -> None:
    if not is_admin(ctx.member, ctx.config, ctx.workspace):
        raise NotAllowed("Only workspace admins can manage feeds.")


# -- managing feeds ------------------------------------------------------------------------


async def overview(ctx: Context, command: Command) -> Reply:
    """`feeds` (also `admin feeds`): the workspace's feeds, with pause, resume and add."""
    _require_admin(ctx)
    feeds = (
        await ctx.session.exec(
            select(Feed)
            .where(Feed.workspace_id == ctx.workspace_id, Feed.status != "removed")
            .order_by(col(Feed.id))
        )
    ).all()
    blocks: list[Block] = [Section(text=md("*Feeds*"))]
    if not feeds:
        blocks.append(
            Section(
                text="No feeds yet. Add your blog's RSS, Atom or JSON feed, and what it "
                "publishes next reaches the colleagues it fits."
            )
        )
    for feed in feeds:
        mode = "reviewed first" if feed.review_first else "published at once"
        state = {
            "active": f"active, {mode}",
            "checking": "being checked",
            "paused": "paused" + (f": {feed.paused_reason}" if feed.paused_reason else ""),
        }.get(feed.status, feed.status)
        blocks += [
            Divider(),
            Section(text=md("*{}*\n{}", feed.title or feed.url, feed.url)),
            ContextLine(
                text=f"{state} · for {AUDIENCES.get(feed.audience, feed.audience)}"
                + (f" · tags: {', '.join(feed.tags)}" if feed.tags else "")
            ),
        ]
        remove = Button(label="Remove", action=actions.FEED_REMOVE, value=str(feed.id))
        if feed.status == "active":
            blocks.append(
                Buttons(
                    buttons=(
                        Button(label="Pause", action=actions.FEED_PAUSE, value=str(feed.id)),
                        remove,
                    )
                )
            )
        elif feed.status == "paused":
            blocks.append(
                Buttons(
                    buttons=(
                        Button(label="Resume", action=actions.FEED_RESUME, value=str(feed.id)),
                        remove,
                    )
                )
            )
    blocks.append(
        Buttons(
            buttons=(
                Button(label="Add a feed", action=actions.FEED_ADD, value="", style="primary"),
            )
        )
    )
    return Reply(message=Message(text=f"{len(feeds)} feeds", blocks=tuple(blocks)), private=True)


def feed_form() -> Form:
    return Form(
        form_id=FORM_ID,
        title="Add a feed",
        submit_label="Add",
        fields=(
            TextField(
                name="url",
                label="Feed address",
                placeholder="https://blog.example.com/feed.xml",
                max_length=urls.URL_MAX,
            ),
            SelectField(
                name="review",
                label="New items",
                options=(
                    Option(value="review", label="Go to the reviewers first"),
                    Option(value="publish", label="Are published at once"),
                ),
                initial=("review",),
            ),
            SelectField(
                name="audience",
                label="Suggested to",
                options=(
                    Option(value="interests", label="People whose interests match the tags"),
                    Option(value="everyone", label="Everyone who opted in"),
                ),
                initial=("interests",),
            ),
            TextField(
                name="tags",
                label="Tags",
                optional=True,
                placeholder="engineering, security",
                hint="Comma-separated, given to every item of the feed.",
            ),
        ),
    )


async def open_add(ctx: Context, action: Action) -> Reply:
    _require_admin(ctx)
    return Reply(form=feed_form())


async def add(ctx: Context, submission: Submission) -> Reply:
    """The feed form: the feed is checked by the worker, then active (or refused)."""
    _require_admin(ctx)
    raw = links._value(submission, "url")
    try:
        url = urls.checked(raw)
    except urls.BadLink as bad:
        raise FormInvalid({"url": str(bad).replace("shared", "added")}) from None
    tags = links.parse_tags(links._value(submission, "tags"))
    if len(tags) > links.TAGS_MAX or any(len(t) > links.TAG_CHARS for t in tags):
        raise FormInvalid({"tags": f"Up to {links.TAGS_MAX} tags of at most 40 characters."})
    existing = (
        await ctx.session.exec(
            select(Feed).where(Feed.workspace_id == ctx.workspace_id, Feed.url == url)
        )
    ).first()
    if existing is not None and existing.status != "removed":
        raise FormInvalid({"url": "That feed is added already."})
    count = len(
        (
            await ctx.session.exec(
                select(Feed.id).where(
                    Feed.workspace_id == ctx.workspace_id, Feed.status != "removed"
                )
            )
        ).all()
    )
    if count >= FEEDS_MAX:
        raise FormInvalid({"url": f"A workspace can have {FEEDS_MAX} feeds; remove one first."})
    review = links._value(submission, "review") or "review"
    audience = links._value(submission, "audience") or "interests"
    if review not in ("review", "publish") or audience not in ("interests", "everyone"):
        raise FormInvalid({"review": "Pick one of the choices."})
    # A removed feed added again is the same row: the items it had are still known, so
    # they are not taken again.
    feed = existing or Feed(
        workspace_id=ctx.workspace_id,
        url=url,
        next_poll_at=ctx.now,
        created_at=ctx.now,
        updated_at=ctx.now,
        added_by_id=ctx.member_id,
    )
    feed.review_first, feed.tags, feed.audience = review == "review", tags, audience
    feed.status, feed.paused_reason, feed.failures, feed.last_error = "checking", None, 0, None
    feed.etag = feed.last_modified = None
    feed.added_by_id, feed.next_poll_at = ctx.member_id, ctx.now
    feed.created_at = feed.updated_at = ctx.now
    ctx.session.add(feed)
    await ctx.session.flush()
    await ctx.send(
        dm(ctx.member.user_id),
        notice(f"🔎 Checking the feed {url} — I'll tell you in a moment whether it works."),
        key=f"feed:{feed.id}:checking",
    )
    return NO_REPLY


async def pause(ctx: Context, action: Action) -> Reply:
    _require_admin(ctx)
    feed = await lookup.get(ctx, Feed, action.value, FEED_GONE)
    if feed.status != "active":
        raise DomainError("That feed isn't active.")
    feed.status, feed.paused_reason, feed.updated_at = "paused", "paused by an admin", ctx.now
    ctx.session.add(feed)
    return Reply.say(f"Paused {feed.title or feed.url}: nothing new comes from it until resumed.")


async def resume(ctx: Context, action: Action) -> Reply:
    _require_admin(ctx)
    feed = await lookup.get(ctx, Feed, action.value, FEED_GONE)
    if feed.status != "paused":
        raise DomainError("That feed isn't paused.")
    feed.status, feed.paused_reason, feed.failures = "active", None, 0
    feed.next_poll_at, feed.updated_at = ctx.now, ctx.now
    ctx.session.add(feed)
    return Reply.say(f"Resumed {feed.title or feed.url}.")


async def ask_remove(ctx: Context, action: Action) -> Reply:
    """`feed_remove`: removing is for good, so ask first."""
    _require_admin(ctx)
    feed = await _not_removed(ctx, action.value)
    return Reply(
        message=Message(
            text=f"Remove the feed {feed.title or feed.url}?",
            blocks=(
                Section(
                    text=md(
                        "Remove the feed *{}*? Nothing new comes from it; the posts it "
                        "brought stay, and their links keep working.",
                        feed.title or feed.url,
                    )
                ),
                Buttons(
                    buttons=(
                        Button(
                            label="Remove it",
                            action=actions.FEED_REMOVE_CONFIRM,
                            value=str(feed.id),
                            style="danger",
                        ),
                    )
                ),
            ),
        ),
        private=True,
    )


async def remove(ctx: Context, action: Action) -> Reply:
    """`feed_remove_confirm`: the feed is no longer polled; its posts stay."""
    _require_admin(ctx)
    feed = await _not_removed(ctx, action.value)
    feed.status, feed.paused_reason, feed.updated_at = "removed", None, ctx.now
    ctx.session.add(feed)
    log.info("feed.removed", feed=feed.id)
    return Reply.say(
        f"Removed {feed.title or feed.url}: nothing new comes from it; its posts stay shared."
    )


async def _not_removed(ctx: Context, raw: str) -> Feed:
    feed = await lookup.get(ctx, Feed, raw, FEED_GONE)
    if feed.status == "removed":
        raise DomainError("That feed is removed already.")
    return feed


# -- polling, in the worker ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One feed's answer: a parsed feed, unchanged (304), or why it failed."""

    fetched: Fetched | None = None
    parsed: feed_format.ParsedFeed | None = None
    error: str | None = None


async def read(fetcher: Fetcher, url: str, etag: str | None, modified: str | None) -> Outcome:
    """Fetch and parse one feed; errors as a reason, never raised."""
    try:
        fetched = await fetcher.fetch(url, kind="feed", etag=etag, last_modified=modified)
    except FetchError as error:
        return Outcome(error=error.message)
    if fetched.not_modified:
        return Outcome(fetched=fetched)
    try:
        parsed = await asyncio.to_thread(
            feed_format.parse, fetched.body, fetched.content_type, fetched.url
        )
    except feed_format.NotAFeed as error:
        return Outcome(fetched=fetched, error=str(error))
    return Outcome(fetched=fetched, parsed=parsed)


async def poll(sessions: SessionFactory, clock: Clock, config: Config, ai: AI) -> int:
    """Check new feeds and poll the due ones, fetches side by side, each written on its own."""
    fetcher = config.fetcher
    if fetcher is None:
        return 0
    now = clock.now()
    async with sessions() as session:
        due = [
            _Due(feed_id or 0, url, etag, modified)
            for feed_id, url, etag, modified in (
                await session.exec(
                    select(Feed.id, Feed.url, Feed.etag, Feed.last_modified)
                    .where(
                        col(Feed.status).in_(("active", "checking")),
                        col(Feed.next_poll_at) <= now,
                    )
                    .order_by(col(Feed.next_poll_at))
                    .limit(POLL_BATCH)
                )
            ).all()
        ]
    if not due:
        return 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(feed: _Due) -> tuple[_Due, Outcome]:
        async with gate:
            return feed, await read(fetcher, feed.url, feed.etag, feed.last_modified)

    for finished in asyncio.as_completed([one(feed) for feed in due]):
        feed, outcome = await finished
        async with transaction(sessions) as session:
            row = await session.get(Feed, feed.id)
            if row is None or row.status not in ("active", "checking"):
                continue  # removed or paused while it was being read
            workspace = await session.get(Workspace, row.workspace_id)
            assert workspace is not None
            await apply(Scope(session, clock, config, workspace), row, outcome)
    return len(due)


def interval(scope: Scope) -> timedelta:
    return timedelta(minutes=workspace_settings.load(scope.workspace).feed_poll_minutes)


async def apply(scope: Scope, feed: Feed, outcome: Outcome) -> None:
    """One feed's answer written: new items in, validators kept, or a failure counted."""
    adder = await scope.session.get(Member, feed.added_by_id)
    assert adder is not None
    feed.last_polled_at = feed.updated_at = scope.now
    scope.session.add(feed)
    if outcome.error is not None or outcome.fetched is None:
        await _failed(scope, feed, adder, outcome.error or "no answer")
        return
    feed.etag = (outcome.fetched.etag or "")[:300] or None
    feed.last_modified = (outcome.fetched.last_modified or "")[:100] or None
    feed.failures, feed.last_error = 0, None
    feed.next_poll_at = scope.now + interval(scope)
    if outcome.parsed is None:
        return  # 304: nothing new
    if feed.status == "checking":
        await _added(scope, feed, adder, outcome.parsed)
        return
    await take_new(scope, feed, adder, outcome.parsed.entries)


async def _added(scope: Scope, feed: Feed, adder: Member, parsed: feed_format.ParsedFeed) -> None:
    """A new feed works: what is in it now is recorded as seen, so nobody is flooded."""
    feed.status = "active"
    feed.title = parsed.title or feed.title
    # Known already when a removed feed is added again.
    seen = set(
        (
            await scope.session.exec(
                select(FeedItem.guid).where(
                    FeedItem.feed_id == feed.id,
                    col(FeedItem.guid).in_([e.guid for e in parsed.entries]),
                )
            )
        ).all()
    )
    known = len(seen)
    items: dict[str, FeedItem] = {}
    for entry in parsed.entries:
        if entry.guid in seen:
            continue
        seen.add(entry.guid)
        items[entry.guid] = FeedItem(
            workspace_id=scope.workspace_id,
            feed_id=feed.id or 0,
            guid=entry.guid,
            canonical_url=urls.canonical(entry.link) if entry.link else None,
            outcome="old",
            published_at=entry.published,
            created_at=scope.now,
        )
        scope.session.add(items[entry.guid])
    mode = "go to the reviewers first" if feed.review_first else "are published at once"
    await scope.send(
        dm(adder.user_id),
        notice(
            f"✅ Feed added: {feed.title or feed.url}. The {len(seen) - known} items already in it "
            f"won't be shared; new ones {mode}."
        ),
        key=f"feed:{feed.id}:added",
        unprompted=True,
    )
    await _offer_newest(scope, feed, adder, [e for e in parsed.entries if e.guid in items], items)


async def _offer_newest(
    scope: Scope,
    feed: Feed,
    adder: Member,
    entries: list[feed_format.Entry],
    items: dict[str, FeedItem],
) -> None:
    """The newest item, to the admin who added the feed only, as a test they may publish."""
    fetcher = scope.config.fetcher
    usable = [
        e
        for e in entries
        if e.link is not None and fetcher is not None and not fetcher.names_internal_host(e.link)
    ]
    if not usable:
        return
    # Dated items by date; a feed without dates lists its newest first.
    dated = [e for e in usable if e.published is not None]
    entry = max(dated, key=lambda e: e.published or scope.now) if dated else usable[0]
    assert entry.link is not None
    canonical = urls.canonical(entry.link)
    if await publish.existing_post(scope, canonical) or await publish.open_link(scope, canonical):
        return
    link = await _item_link(
        scope, feed, entry, canonical, member_id=adder.id or 0, status="offered"
    )
    items[entry.guid].link_id = link.id
    label = "Send it to the reviewers" if feed.review_first else "Publish it"
    blocks: list[Block] = [
        Section(text=md("*To try the feed:* its newest item, {}", link.title)),
        ContextLine(text=f"Link: {canonical}"),
    ]
    if link.description:
        blocks.append(Section(text=link.description))
    blocks.append(
        Buttons(
            buttons=(
                Button(label=label, action=actions.FEED_TRY, value=str(link.id), style="primary"),
            )
        )
    )
    await scope.send(
        dm(adder.user_id),
        Message(text=f"To try the feed: {link.title}", blocks=tuple(blocks)),
        key=f"feed:{feed.id}:offer:{link.id}",
        unprompted=True,
    )


async def try_newest(ctx: Context, action: Action) -> Reply:
    """`feed_try`: the offered newest item goes the way the feed's new items go."""
    _require_admin(ctx)
    link = await lookup.get(ctx, ContentLink, action.value, "I can't find that item any more.")
    if link.status != "offered" or link.feed_id is None:
        raise InvalidTransition("That item is on its way already.")
    feed = await ctx.session.get(Feed, link.feed_id)
    if feed is None or feed.status == "removed":
        raise DomainError("That feed is removed.")
    canonical = link.canonical_url or ""
    if await publish.existing_post(ctx, canonical) or await publish.open_link(
        ctx, canonical, other_than=link.id
    ):
        raise DomainError("That article is shared already.")
    item = (await ctx.session.exec(select(FeedItem).where(FeedItem.link_id == link.id))).first()
    link.status, link.updated_at = "in_review", ctx.now
    ctx.session.add(link)
    if feed.review_first:
        await links.send_for_review(ctx, link, ctx.member, origin=f"from the feed {feed.title}")
        outcome, said = "review", f"Sent “{link.title}” to the reviewers."
    else:
        post = await publish.publish(ctx, link, approver=ctx.member, audience=feed.audience)
        if item is not None:
            item.post_id = post.id
        outcome, said = "posted", f"Published “{link.title}”: it is on its way to colleagues."
    if item is not None:
        item.outcome = outcome
        ctx.session.add(item)
    return Reply.say(said)


async def _failed(scope: Scope, feed: Feed, adder: Member, reason: str) -> None:
    reason = text.plain(reason, 300)
    if feed.status == "checking":
        # A feed that never worked is not kept: the admin hears why, and nothing is saved.
        log.info("feed.refused", feed=feed.id, reason=reason)
        await scope.session.delete(feed)
        await scope.send(
            dm(adder.user_id),
            notice(f"I couldn't add the feed {feed.url}: {reason}"),
            key=f"feed:{feed.id}:refused",
            unprompted=True,
        )
        return
    feed.failures += 1
    feed.last_error = reason
    backoff = min(interval(scope) * (2**feed.failures), BACKOFF_MAX)
    feed.next_poll_at = scope.now + backoff
    log.info("feed.failed", feed=feed.id, failures=feed.failures, reason=reason)
    if feed.failures >= FAILURES_TO_PAUSE:
        feed.status = "paused"
        feed.paused_reason = reason
        message = notice(
            f"⏸️ I paused the feed {feed.title or feed.url}: it failed "
            f"{feed.failures} times in a row. The last problem: {reason} "
            "Resume it from `feeds` once it works again."
        )
        for admin in await admins(scope, adder):
            await scope.send(
                dm(admin.user_id),
                message,
                key=f"feed:{feed.id}:paused:{scope.now.isoformat()}:{admin.id}",
                unprompted=True,
            )


async def admins(scope: Scope, adder: Member) -> list[Member]:
    """The workspace's admins Flywheel knows (platform admins and FLYWHEEL_ADMINS), and
    the admin who added the feed even if they are one no longer."""
    listed = scope.config.admins_in(scope.workspace)
    # The admins only, in SQL: a workspace may have thousands of members.
    query = select(Member).where(
        Member.workspace_id == scope.workspace_id,
        col(Member.is_bot).is_(False),
        or_(
            col(Member.is_platform_admin).is_(True),
            col(Member.user_id).in_(listed),
            func.lower(col(Member.email)).in_(listed),
        ),
    )
    found = [
        m
        for m in (await scope.session.exec(query.order_by(col(Member.id)))).all()
        if is_admin(m, scope.config, scope.workspace)
    ]
    if all(m.id != adder.id for m in found):
        found.append(adder)
    return found


async def take_new(
    scope: Scope, feed: Feed, adder: Member, entries: tuple[feed_format.Entry, ...]
) -> int:
    """New items become posts (or reviews); how many. Each GUID is seen once per feed."""
    guids = [e.guid for e in entries]
    known = set(
        (
            await scope.session.exec(
                select(FeedItem.guid).where(
                    FeedItem.feed_id == feed.id, col(FeedItem.guid).in_(guids)
                )
            )
        ).all()
    )
    taken = 0
    for entry in entries:
        if entry.guid in known:
            continue
        known.add(entry.guid)
        if taken >= NEW_ITEMS_MAX:
            break
        outcome, link_id, post_id = await _take(scope, feed, adder, entry)
        taken += outcome in ("posted", "review")
        scope.session.add(
            FeedItem(
                workspace_id=scope.workspace_id,
                feed_id=feed.id or 0,
                guid=entry.guid,
                canonical_url=urls.canonical(entry.link) if entry.link else None,
                outcome=outcome,
                link_id=link_id,
                post_id=post_id,
                published_at=entry.published,
                created_at=scope.now,
            )
        )
    return taken


async def _take(
    scope: Scope, feed: Feed, adder: Member, entry: feed_format.Entry
) -> tuple[str, int | None, int | None]:
    if entry.link is None:
        log.info("feed.item_skipped", feed=feed.id, guid=entry.guid[:100], reason="no link")
        return "skipped", None, None
    fetcher = scope.config.fetcher
    if fetcher is None or fetcher.names_internal_host(entry.link):
        log.info("feed.item_skipped", feed=feed.id, guid=entry.guid[:100], reason="internal")
        return "skipped", None, None
    if entry.published is not None and entry.published < feed.created_at:
        return "old", None, None
    canonical = urls.canonical(entry.link)
    post = await publish.existing_post(scope, canonical)
    if post is not None or await publish.open_link(scope, canonical):
        return "duplicate", None, post.id if post is not None else None
    link = await _item_link(
        scope, feed, entry, canonical, member_id=feed.added_by_id, status="in_review"
    )
    if feed.review_first:
        await links.send_for_review(scope, link, adder, origin=f"from the feed {feed.title}")
        return "review", link.id, None
    published = await publish.publish(scope, link, approver=adder, audience=feed.audience)
    return "posted", link.id, published.id


async def _item_link(
    scope: Scope,
    feed: Feed,
    entry: feed_format.Entry,
    canonical: str,
    *,
    member_id: int,
    status: str,
) -> ContentLink:
    """A feed item as a link, with the feed's tags and suggested captions, flushed for its id."""
    assert entry.link is not None
    link = ContentLink(
        workspace_id=scope.workspace_id,
        member_id=member_id,
        source="feed",
        feed_id=feed.id,
        url=entry.link,
        canonical_url=canonical,
        status=status,
        title=entry.title or text.plain(canonical, text.TITLE_MAX),
        description=entry.summary,
        captions=links.suggested_captions(entry.title or canonical, entry.summary),
        tags=list(feed.tags),
        created_at=scope.now,
        updated_at=scope.now,
    )
    scope.session.add(link)
    await scope.session.flush()
    return link


def register(router: Router) -> None:
    router.command("feeds", usage="feeds", summary="the company's feeds (admins only)")(overview)
    router.action(actions.FEED_ADD)(open_add)
    router.action(actions.FEED_PAUSE)(pause)
    router.action(actions.FEED_RESUME)(resume)
    router.action(actions.FEED_REMOVE)(ask_remove)
    router.action(actions.FEED_TRY)(try_newest)
    router.action(actions.FEED_REMOVE_CONFIRM)(remove)
    router.form(FORM_ID)(add)
    router.job(poll)
