"""Posting an approved post on LinkedIn as the member: the form, the schedule, the worker.

`linkedin_post` opens a form with the suggested caption (editable, LinkedIn's 3,000
characters) and when to post: now, or a time in the person's working hours (tomorrow
morning first). Submitting queues a `LinkedInPost`; the worker publishes it through the
versioned Posts API, never on the acknowledgement path.

LinkedIn has no idempotency key, so a request that went out is never sent again by itself:
an answer lost on the way (a timeout, a reset connection) leaves the post `unconfirmed` and
the member is asked to check their feed. Only what LinkedIn says was not published (429,
5xx, unreachable) is tried again, later, in the member's working hours.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_
from sqlalchemy import select as sa_select
from sqlmodel import col, delete, select

from handlers.core import actions, markup
from handlers.core.context import Config, Context, Scope, dm
from handlers.core.errors import DomainError
from handlers.core.interactions import Action, Reply, Submission
from handlers.core.lookup import get
from handlers.core.markup import md, quoted
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
    notice,
)
from handlers.core.ports import AI, Clock
from handlers.core.quiet_hours import WorkingHours, next_allowed
from handlers.core.wording import clip, first, their_zone
from handlers.core.workspace_settings import load
from handlers.linkedin import connection
from handlers.linkedin.api import (
    RESERVED,
    AccessToken,
    AnswerLost,
    Article,
    LinkedInApi,
    NotSent,
    Refused,
    Unauthorized,
    author_urn,
    escape,
    post_url,
)
from handlers.linkedin.status import ACTIVE, LinkedInPostStatus, move
from handlers.sharing import tracked_links
from handlers.sharing.share import NO_LONGER_SHARED, caption_for, get_post, retired
from storage.db import SessionFactory, transaction
from storage.models import (
    LinkedInAccount,
    LinkedInPost,
    LinkedInState,
    Member,
    Post,
    ShareSuggestion,
    TrackedLink,
    Workspace,
)
from storage.upsert import on_postgres

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

S = LinkedInPostStatus
FORM = "linkedin_post_form"
CAPTION_MAX = 3000
DESCRIPTION_MAX = 250
# Times offered besides "now": over the next working days, at these local times.
SLOT_TIMES = (time(9, 0), time(12, 0), time(15, 0))
SLOT_DAYS = 3
# A post sent with no answer for this long was lost by a crashed worker: never resent.
SENDING_LEASE = timedelta(minutes=10)
# Tries that reached no one (LinkedIn busy or unreachable) before giving up.
MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(minutes=2)
RETRY_CAP = timedelta(hours=2)
# Posts a run of the job publishes at most, and how many go to LinkedIn side by side.
PER_RUN = 500
BATCH = 10
ACTIVITY_URL = "https://www.linkedin.com/in/me/recent-activity/all/"


def _local(member: Member, workspace: Workspace) -> tuple[ZoneInfo, WorkingHours]:
    return their_zone(member, workspace), load(workspace).working_hours()


def slots(now: datetime, tz: ZoneInfo, hours: WorkingHours) -> list[datetime]:
    """The times offered for "Post at…", tomorrow morning first, all in working hours."""
    today = now.astimezone(tz).date()
    found: list[datetime] = []
    days = 0
    for offset in range(1, 11):
        day = today + timedelta(days=offset)
        moments = [datetime.combine(day, at, tzinfo=tz) for at in SLOT_TIMES]
        allowed = [m.astimezone(now.tzinfo) for m in moments if hours.allows(m)]
        found += allowed
        days += bool(allowed)
        if days == SLOT_DAYS:
            break
    if not found:
        # Working hours that avoid every offered time (a short afternoon): their start.
        found.append(next_allowed(now + timedelta(days=1), tz, hours))
    return found


def slot_label(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    local = moment.astimezone(tz)
    days = (local.date() - now.astimezone(tz).date()).days
    day = "Tomorrow" if days == 1 else local.strftime("%A")
    part = "morning" if local.hour < 12 else "afternoon"
    return f"{day} {part}, {local:%H:%M} ({local:%a %-d %b}, your time)"


def when_words(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%a %-d %b at %H:%M} (your time)"


def form(
    post: Post,
    caption: str,
    account: LinkedInAccount,
    now: datetime,
    tz: ZoneInfo,
    hours: WorkingHours,
    earlier: LinkedInPost | None,
) -> Form:
    """Post on LinkedIn: the caption to edit, and when."""
    times = slots(now, tz, hours)
    notes = [
        f"Posted as {account.name or 'you'}, with a card linking to the article through "
        "your own tracked link."
    ]
    if earlier is not None and earlier.posted_at is not None:
        notes.append(
            f"You posted this on {earlier.posted_at.astimezone(tz):%-d %b}: sending it again "
            "publishes a second post."
        )
    return Form(
        form_id=FORM,
        title="Post on LinkedIn",
        submit_label="Post",
        intro=(Section(text=md("*{}*", post.title)), ContextLine(text=" ".join(notes))),
        fields=(
            TextField(
                name="caption",
                label="Your post",
                initial=caption[:CAPTION_MAX],
                multiline=True,
                max_length=CAPTION_MAX,
                hint="Shown on LinkedIn exactly as you type it (up to 3,000 characters).",
            ),
            SelectField(
                name="when",
                label="When",
                options=(
                    Option(value="now", label="Post now"),
                    *(
                        Option(value=f"at:{int(m.timestamp())}", label=slot_label(m, tz, now))
                        for m in times
                    ),
                ),
                initial=("now",),
            ),
        ),
        state=str(post.id),
    )


async def suggested_caption(ctx: Scope, post: Post, member_id: int) -> str:
    planned = (
        await ctx.session.exec(
            select(ShareSuggestion.caption).where(
                ShareSuggestion.post_id == post.id, ShareSuggestion.member_id == member_id
            )
        )
    ).first()
    return planned or caption_for(post, member_id)


NOT_CONNECTED = (
    "Your LinkedIn isn't connected, so nothing was posted. Connect it first — it takes a "
    "few seconds."
)
EXPIRED = (
    "Your LinkedIn connection has expired, so nothing was posted. Reconnect it — it takes a "
    "few seconds."
)


class NotConnected(DomainError):
    """The member's LinkedIn is not usable now; the reply offers to (re)connect."""

    def reply(self) -> Reply:
        again = self.message == EXPIRED
        return Reply(
            message=Message(
                text=self.message,
                blocks=(
                    Section(text=self.message),
                    Buttons(
                        buttons=(
                            connection.connect_button(
                                "Reconnect LinkedIn" if again else "Connect LinkedIn"
                            ),
                        )
                    ),
                ),
            ),
            private=True,
        )


async def _connected(ctx: Context) -> LinkedInAccount:
    """The actor's LinkedIn, usable now; NotConnected (saying what to do) otherwise."""
    connection.keyring(ctx.config)
    account = await connection.account_of(ctx, ctx.member_id)
    if account is None:
        raise NotConnected(NOT_CONNECTED)
    if account.expires_at <= ctx.now:
        raise NotConnected(EXPIRED)
    return account


async def _latest(ctx: Context, post_id: int) -> LinkedInPost | None:
    return (
        await ctx.session.exec(
            select(LinkedInPost)
            .where(
                LinkedInPost.workspace_id == ctx.workspace_id,
                LinkedInPost.member_id == ctx.member_id,
                LinkedInPost.post_id == post_id,
            )
            .order_by(col(LinkedInPost.id).desc())
        )
    ).first()


def _on_its_way(earlier: LinkedInPost | None, tz: ZoneInfo) -> None:
    if earlier is None or earlier.status not in ACTIVE:
        return
    if earlier.status == S.SCHEDULED:
        raise DomainError(
            f"This post is already scheduled for LinkedIn on {when_words(earlier.due_at, tz)}. "
            "Cancel that one first to change it."
        )
    if earlier.status == S.WAITING:
        raise DomainError(
            "This post is already waiting to go to LinkedIn once you reconnect: press "
            "“Connect LinkedIn”."
        )
    raise DomainError("This post is being published on LinkedIn right now.")


async def open_form(ctx: Context, action: Action) -> Reply:
    """`linkedin_post`: the form, with the caption suggested for this person."""
    post = await get_post(ctx, action.value)
    if retired(post, ctx.now):
        raise DomainError(NO_LONGER_SHARED)
    try:
        account = await _connected(ctx)
    except NotConnected as refused:
        return refused.reply()
    tz, hours = _local(ctx.member, ctx.workspace)
    earlier = await _latest(ctx, post.id or 0)
    _on_its_way(earlier, tz)
    caption = await suggested_caption(ctx, post, ctx.member_id)
    return Reply(form=form(post, caption, account, ctx.now, tz, hours, earlier))


def _chosen_time(raw: str, now: datetime, tz: ZoneInfo, hours: WorkingHours) -> datetime | None:
    """When the person asked to post: now (None) or a time in their working hours."""
    if raw == "now":
        return None
    if not raw:
        raise ValueError("Choose when to post: now, or one of the times offered.")
    moment = None
    digits = raw.removeprefix("at:")
    if raw.startswith("at:") and digits.isascii() and digits.isdigit() and len(digits) <= 12:
        moment = datetime.fromtimestamp(int(digits), tz=now.tzinfo)
    if moment is None or not now < moment <= now + timedelta(days=14):
        raise ValueError("Choose one of the times offered.")
    if not hours.allows(moment.astimezone(tz)):
        raise ValueError("Choose a time in your working hours.")
    return moment


async def submit(ctx: Context, submission: Submission) -> Reply:
    """`linkedin_post_form`: check the caption and the time, then queue the post."""
    post = await get_post(ctx, submission.state)
    if retired(post, ctx.now):
        raise DomainError(NO_LONGER_SHARED)
    caption = first(submission.values.get("caption")).strip()
    tz, hours = _local(ctx.member, ctx.workspace)
    errors: dict[str, str] = {}
    if not caption:
        errors["caption"] = "Write something to go with the link — LinkedIn needs a few words."
    elif len(caption) > CAPTION_MAX:
        errors["caption"] = (
            f"LinkedIn takes up to {CAPTION_MAX:,} characters; this is {len(caption):,}."
        )
    elif len(escape(caption)) > CAPTION_MAX:
        # Sent escaped, each reserved character takes two of LinkedIn's 3,000.
        errors["caption"] = (
            f"LinkedIn counts each of {' '.join(sorted(RESERVED))} twice, so this is "
            f"{len(escape(caption)):,} of its {CAPTION_MAX:,} characters."
        )
    at: datetime | None = None
    try:
        at = _chosen_time(first(submission.values.get("when")).strip(), ctx.now, tz, hours)
    except ValueError as error:
        errors["when"] = str(error)
    if errors:
        return Reply.invalid(errors)
    try:
        await _connected(ctx)
    except NotConnected as refused:
        return refused.reply()
    _on_its_way(await _latest(ctx, post.id or 0), tz)
    links = await tracked_links.links_for(ctx, post, [ctx.member], ("linkedin",))
    link = links[(ctx.member_id, "linkedin")]
    row = LinkedInPost(
        workspace_id=ctx.workspace_id,
        post_id=post.id or 0,
        member_id=ctx.member_id,
        link_id=link.id or 0,
        caption=caption,
        status=S.SCHEDULED,
        due_at=at or ctx.now,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    if at is None:
        return Reply.say(
            "Posting it on LinkedIn now — I'll send you the link as soon as it's live."
        )
    text = md("Scheduled for LinkedIn on {}: *{}*", when_words(at, tz), post.title)
    return Reply(
        message=Message(
            text=text,
            blocks=(
                Section(text=text),
                Buttons(
                    buttons=(
                        Button(
                            label="Cancel",
                            action=actions.LINKEDIN_CANCEL,
                            value=str(row.id),
                            style="danger",
                        ),
                    )
                ),
            ),
        ),
        private=True,
    )


async def cancel(ctx: Context, action: Action) -> Reply:
    """`linkedin_cancel`: withdraw a scheduled post that has not gone out."""
    row = await get(ctx, LinkedInPost, action.value, "I can't find that scheduled post.")
    if row.member_id != ctx.member_id:
        raise DomainError("Only the person who scheduled a LinkedIn post can cancel it.")
    row.status = move(row.status, S.CANCELLED)
    row.updated_at = ctx.now
    ctx.session.add(row)
    post = await ctx.session.get(Post, row.post_id)
    return Reply.say(
        f"Cancelled: “{post.title if post else 'the post'}” won't be posted on LinkedIn."
    )


# -- messages from the worker --------------------------------------------------------------


def reconnect_message(
    text: str, detail: str = "Press the button for a fresh link to LinkedIn."
) -> Message:
    return Message(
        text=text,
        blocks=(
            Section(text=text),
            ContextLine(text=detail),
            Buttons(buttons=(connection.connect_button("Reconnect LinkedIn"),)),
        ),
    )


def posted_message(post: Post, urn: str, public_base_url: str) -> Message:
    text = md("🎉 Your post is live on LinkedIn: {}", markup.link(post_url(urn), post.title))
    return Message(
        text=text,
        blocks=(
            Section(text=text),
            Buttons(
                buttons=(
                    Button(
                        label="See it on LinkedIn",
                        action=actions.LINKEDIN_OPEN,
                        url=post_url(urn),
                    ),
                )
            ),
            ContextLine(text="Clicks on its link count for you in the weekly digest."),
        ),
    )


def unconfirmed_message(post: Post) -> Message:
    text = md(
        "I sent *{}* to LinkedIn but its answer never came back, so I can't tell whether it "
        "was published. Please {} — if it isn't there, press “Post on LinkedIn” again. I won't "
        "send it again by myself, so it can't appear twice.",
        post.title,
        markup.link(ACTIVITY_URL, "check your LinkedIn activity"),
    )
    return Message(text=text, blocks=(Section(text=text),))


def refused_message(post: Post, detail: str) -> Message:
    text = md(
        "LinkedIn refused *{}*, so it wasn't posted. LinkedIn said:\n{}", post.title, quoted(detail)
    )
    return Message(
        text=text,
        blocks=(
            Section(text=text),
            ContextLine(text="Change the caption and press “Post on LinkedIn” to try again."),
        ),
    )


def gave_up_message(post: Post) -> Message:
    text = md(
        "LinkedIn kept failing, so *{}* wasn't posted. Nothing was published — press "
        "“Post on LinkedIn” to try again later.",
        post.title,
    )
    return Message(text=text, blocks=(Section(text=text),))


# -- the worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A post on its way: everything the call to LinkedIn needs, outside any transaction."""

    id: int
    token: AccessToken
    article: Article


@dataclass(frozen=True)
class Outcome:
    urn: str | None = None
    error: Exception | None = None


def _description(post: Post) -> str:
    return clip(" ".join((post.summary or post.body).split()), DESCRIPTION_MAX)


async def run_posts(
    sessions: SessionFactory, clock: Clock, config: Config, ai: AI, limit: int = PER_RUN
) -> int:
    """Publish the posts that are due, a batch at a time; how many were sent to LinkedIn.

    A batch is claimed in one transaction, sent to LinkedIn side by side (each member posts
    once: the calls are independent), and its outcomes are written in one transaction.
    """
    api = ai.linkedin
    if api is None or config.keyring is None or not config.linkedin:
        return 0
    sent = 0
    while sent < limit:
        batch, more = await _claim(sessions, clock, config, min(BATCH, limit - sent))
        if batch:
            outcomes = await asyncio.gather(*(_publish(api, claimed) for claimed in batch))
            await _finish(sessions, clock, config, list(zip(batch, outcomes, strict=True)))
            sent += len(batch)
        if not more:
            break
    return sent


async def _claim(
    sessions: SessionFactory, clock: Clock, config: Config, size: int
) -> tuple[list[Claimed], bool]:
    """Take up to `size` due posts and mark them `sending`; with whether more may be due.

    Posts whose member disconnected are cancelled, and those whose token expired wait, in
    the same transaction: neither is sent.
    """
    assert config.keyring is not None
    async with transaction(sessions) as session:
        now = clock.now()
        # One statement for the rows and all they need: each round trip counts, per post.
        query = (
            _with_context(
                sa_select(LinkedInPost, Workspace, Member, Post, TrackedLink, LinkedInAccount)
            )
            .join(TrackedLink, col(TrackedLink.id) == LinkedInPost.link_id)
            .outerjoin(
                LinkedInAccount,
                and_(
                    col(LinkedInAccount.member_id) == LinkedInPost.member_id,
                    col(LinkedInAccount.workspace_id) == LinkedInPost.workspace_id,
                    col(LinkedInAccount.disconnected_at).is_(None),
                ),
            )
            .where(LinkedInPost.status == S.SCHEDULED, col(LinkedInPost.due_at) <= now)
            .order_by(col(LinkedInPost.due_at), col(LinkedInPost.id))
            .limit(size)
        )
        if on_postgres(session):
            query = query.with_for_update(skip_locked=True, of=LinkedInPost)
        found = (await session.exec(query)).all()
        claimed: list[Claimed] = []
        for row, workspace, member, post, link, account in found:
            scope = Scope(session, clock, config, workspace)
            row.updated_at = now
            session.add(row)
            if account is None:
                row.status, row.error = move(row.status, S.CANCELLED), "LinkedIn disconnected"
                continue
            if retired(post, now):
                # Retired while it waited: nothing goes out, and the person hears why.
                row.status, row.error = move(row.status, S.CANCELLED), "the post was retired"
                await scope.send(
                    dm(member.user_id),
                    notice(
                        f"“{clip(post.title, 80)}” is no longer shared, so it was not posted "
                        "on LinkedIn.",
                        NO_LONGER_SHARED,
                    ),
                    key=f"linkedin:post:{row.id}",
                    unprompted=True,
                )
                continue
            if account.expires_at <= now:
                row.status = move(row.status, S.WAITING)
                await tell_expired(scope, account, member)
                continue
            token = connection.unseal(config.keyring, account)
            session.add(account)
            row.status, row.sent_at = move(row.status, S.SENDING), now
            article = Article(
                author=author_urn(account.person_id),
                commentary=escape(row.caption),
                source=tracked_links.tracked_url(config.public_base_url, link.code),
                title=post.title,
                description=_description(post),
            )
            claimed.append(Claimed(row.id or 0, token, article))
        return claimed, len(found) == size


def _with_context(query: Any) -> Any:
    """`query` over LinkedInPost joined to its workspace, member and post."""
    return (
        query.join(Workspace, col(Workspace.id) == LinkedInPost.workspace_id)
        .join(Member, col(Member.id) == LinkedInPost.member_id)
        .join(Post, col(Post.id) == LinkedInPost.post_id)
    )


async def _publish(api: LinkedInApi, claimed: Claimed) -> Outcome:
    try:
        return Outcome(urn=await api.create_post(claimed.token, claimed.article))
    except (NotSent, AnswerLost, Unauthorized, Refused) as error:
        return Outcome(error=error)
    except Exception as error:
        # An outcome nobody can read may still have been published: treated as lost.
        log.exception("linkedin.post_crashed", linkedin_post=claimed.id)
        return Outcome(error=AnswerLost(f"{type(error).__name__}"))


async def _finish(
    sessions: SessionFactory,
    clock: Clock,
    config: Config,
    results: list[tuple[Claimed, Outcome]],
) -> None:
    """Record what LinkedIn answered for each post of a batch, and tell each member."""
    outcomes = {claimed.id: outcome for claimed, outcome in results}
    async with transaction(sessions) as session:
        query = _with_context(sa_select(LinkedInPost, Workspace, Member, Post)).where(
            col(LinkedInPost.id).in_(sorted(outcomes))
        )
        for row, workspace, member, post in (await session.exec(query)).all():
            scope = Scope(session, clock, config, workspace)
            await _record(scope, row, member, post, outcomes[row.id or 0])


async def _record(
    scope: Scope, row: LinkedInPost, member: Member, post: Post, outcome: Outcome
) -> None:
    """One post's outcome: posted, retried later, waiting, refused or unconfirmed."""
    session, config, workspace = scope.session, scope.config, scope.workspace
    now, error = scope.now, outcome.error
    row.updated_at = now
    bound = log.bind(linkedin_post=row.id, workspace=workspace.external_id)
    to, key = dm(member.user_id), f"linkedin:post:{row.id}"
    if outcome.urn is not None:
        row.status, row.urn, row.posted_at = move(row.status, S.POSTED), outcome.urn, now
        await scope.send(to, posted_message(post, outcome.urn, config.public_base_url), key=key)
        bound.info("linkedin.posted", urn=outcome.urn)
    elif isinstance(error, NotSent):
        row.attempts += 1
        row.error = error.detail[:1000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = move(row.status, S.FAILED)
            await scope.send(to, gave_up_message(post), key=key)
            bound.warning("linkedin.gave_up", error=error.detail, attempts=row.attempts)
        else:
            tz, hours = _local(member, workspace)
            pause = min(RETRY_CAP, RETRY_BASE * 2 ** (row.attempts - 1))
            wait = max(pause.total_seconds(), error.retry_after or 0)
            wait *= random.uniform(1.0, 1.25)
            row.status = move(row.status, S.SCHEDULED)
            row.due_at = next_allowed(now + timedelta(seconds=wait), tz, hours)
            bound.info("linkedin.retry_later", error=error.detail, due_at=row.due_at)
    elif isinstance(error, Unauthorized):
        row.status = move(row.status, S.WAITING)
        account = await connection.account_of(scope, row.member_id)
        if account is not None:
            account.expires_at = min(account.expires_at, now)
            session.add(account)
            await tell_expired(scope, account, member)
        bound.info("linkedin.unauthorized")
    elif isinstance(error, Refused):
        row.status, row.error = move(row.status, S.FAILED), error.detail[:1000]
        await scope.send(to, refused_message(post, error.detail), key=key)
        bound.info("linkedin.refused", status=error.status, error=error.detail)
    else:
        detail = getattr(error, "detail", "no answer")
        row.status, row.error = move(row.status, S.UNCONFIRMED), str(detail)[:1000]
        await scope.send(to, unconfirmed_message(post), key=key)
        bound.warning("linkedin.unconfirmed", error=detail)
    session.add(row)


async def tell_expired(scope: Scope, account: LinkedInAccount, member: Member) -> None:
    """Once per expiry: the member's LinkedIn needs reconnecting (posts wait until then)."""
    if account.expiry_told_at is not None:
        return
    account.expiry_told_at = scope.now
    scope.session.add(account)
    await scope.send(
        dm(member.user_id),
        reconnect_message(
            "Your LinkedIn connection has expired, so nothing more can be posted for you.",
            "Anything you scheduled waits and goes out once you reconnect. "
            "Press the button for a fresh link to LinkedIn.",
        ),
        key=f"linkedin:expired:{account.id}:{int(account.connected_at.timestamp())}",
        unprompted=True,
    )


# -- per-workspace sweep: reminders, expiries, lost sends ---------------------------------

REMIND_BEFORE = timedelta(days=7)
STATES_KEPT = connection.STATE_TTL * 2


async def sweep(scope: Scope, ai: AI) -> None:
    """Remind a week before a token expires, prompt once after, settle abandoned sends."""
    if not scope.config.linkedin:
        return
    now = scope.now
    accounts = (
        await scope.session.exec(
            select(LinkedInAccount).where(
                LinkedInAccount.workspace_id == scope.workspace_id,
                col(LinkedInAccount.disconnected_at).is_(None),
                col(LinkedInAccount.expires_at) <= now + REMIND_BEFORE,
            )
        )
    ).all()
    for account in accounts:
        member = await scope.session.get(Member, account.member_id)
        if member is None:
            continue
        if account.expires_at <= now:
            await tell_expired(scope, account, member)
        elif account.reminded_at is None:
            account.reminded_at = now
            scope.session.add(account)
            tz, _ = _local(member, scope.workspace)
            await scope.send(
                dm(member.user_id),
                reconnect_message(
                    f"Your LinkedIn connection expires on {when_words(account.expires_at, tz)}.",
                    "LinkedIn asks for a new connection every 60 days. Reconnect now and "
                    "your posts keep going out without a gap.",
                ),
                key=f"linkedin:remind:{account.id}:{int(account.connected_at.timestamp())}",
                unprompted=True,
            )
    # A used state only has to be remembered while it could still be accepted.
    await scope.session.exec(
        delete(LinkedInState).where(
            col(LinkedInState.workspace_id) == scope.workspace_id,
            col(LinkedInState.used_at) < now - STATES_KEPT,
        )
    )
    abandoned = (
        await scope.session.exec(
            select(LinkedInPost).where(
                LinkedInPost.workspace_id == scope.workspace_id,
                LinkedInPost.status == S.SENDING,
                col(LinkedInPost.sent_at) <= now - SENDING_LEASE,
            )
        )
    ).all()
    for row in abandoned:
        # A worker died between sending and hearing back: it may be live, so never resent.
        row.status, row.error, row.updated_at = S.UNCONFIRMED, "the worker stopped", now
        scope.session.add(row)
        member = await scope.session.get(Member, row.member_id)
        post = await scope.session.get(Post, row.post_id)
        if member is not None and post is not None:
            await scope.send(
                dm(member.user_id),
                unconfirmed_message(post),
                key=f"linkedin:post:{row.id}",
                unprompted=True,
            )


async def run_revocations(sessions: SessionFactory, clock: Clock, config: Config, ai: AI) -> int:
    """Revoke the tokens of disconnected accounts at LinkedIn, then forget them."""
    if ai.linkedin is None or config.keyring is None:
        return 0
    async with sessions() as session:
        ids = (
            await session.exec(
                select(LinkedInAccount.id).where(col(LinkedInAccount.disconnected_at).is_not(None))
            )
        ).all()
    done = 0
    for account_id in ids:
        async with sessions() as session:
            account = await session.get(LinkedInAccount, account_id)
            if account is None or account.disconnected_at is None:
                continue
            try:
                token: AccessToken | None = connection.unseal(config.keyring, account)
            except Exception:
                token = None  # unreadable under every key: nothing to revoke with
        if token is not None:
            try:
                await ai.linkedin.revoke(token)
            except NotSent as error:
                log.info("linkedin.revoke_later", error=error.detail)
                continue
            except Exception as error:
                # Refused (already revoked or expired) or unclear: the token is forgotten anyway.
                log.info("linkedin.revoke_refused", error=str(getattr(error, "detail", error)))
        async with transaction(sessions) as session:
            account = await session.get(LinkedInAccount, account_id)
            if account is not None and account.disconnected_at is not None:
                await session.delete(account)
                done += 1
    return done


def register(router: Router) -> None:
    router.action(actions.LINKEDIN_POST)(open_form)
    router.action(actions.LINKEDIN_CANCEL)(cancel)
    router.form(FORM)(submit)
    router.sweep(sweep)
    router.job(run_posts)
    router.job(run_revocations)
