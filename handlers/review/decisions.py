"""Review: reviewers approve, ask for changes or reject; approval publishes a Post."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, dm
from handlers.core.errors import FormInvalid, InvalidTransition, NotAllowed, NotFound
from handlers.core.ids import parse_id
from handlers.core.interactions import NO_REPLY, Action, Reply, Submission
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import DRAFT_GONE
from handlers.core.markup import md, quoted
from handlers.core.members import is_admin, mention
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Section,
    TextField,
    notice,
)
from handlers.drafting.draft_status import DraftStatus, move_draft
from handlers.sharing import distribution
from storage.models import AuditEvent, ContentRequest, Draft, DraftVersion, Member, Post

if TYPE_CHECKING:
    from handlers.core.router import Router

FORM_ID = "review_form"
COMMENT_MAX = 2000
SUMMARY_MAX = 300


async def _target(ctx: Context, value: str) -> tuple[Draft, DraftVersion, ContentRequest]:
    """The draft and version a review button names, checked against the current version."""
    raw_draft, _, raw_version = value.partition(":")
    draft_id = parse_id(raw_draft, "I can't find that draft.")
    version_no = parse_id(raw_version, "I can't find that draft.")
    draft = await lookup.get(ctx, Draft, draft_id, DRAFT_GONE)
    request = await ctx.session.get(ContentRequest, draft.request_id)
    version = (
        await ctx.session.exec(
            select(DraftVersion).where(
                DraftVersion.draft_id == draft.id, DraftVersion.version == version_no
            )
        )
    ).first()
    if request is None or version is None:
        raise NotFound("I can't find that version of the draft.")
    return draft, version, request


def _may_decide(ctx: Context, draft: Draft, version: DraftVersion) -> None:
    """Only reviewers decide, never on their own draft, and only on the current version."""
    settings = workspace_settings.load(ctx.workspace)
    if ctx.member.user_id not in settings.reviewers:
        hint = (
            " You're an admin: add yourself as a reviewer with `admin`."
            if is_admin(ctx.member, ctx.config, ctx.workspace)
            else ""
        )
        raise NotAllowed("Only the workspace's reviewers can decide on drafts." + hint)
    if draft.author_id == ctx.member_id:
        raise NotAllowed("You wrote this draft, so another reviewer has to decide on it.")
    if draft.status == DraftStatus.APPROVED:
        raise InvalidTransition("This draft is already approved.")
    if draft.status == DraftStatus.REJECTED:
        raise InvalidTransition(
            "This draft was rejected, so it can't be approved or changed any more."
        )
    if version.version != draft.version:
        raise InvalidTransition(
            f"Version {draft.version} is the current one — please review that instead."
        )
    if draft.status != DraftStatus.IN_REVIEW:
        raise InvalidTransition("This draft is back with its author for changes.")


def _closed_review(version: DraftVersion, line: str) -> Message:
    return Message(
        text=line,
        blocks=(
            Section(text=md("*{}* — version {}", version.title, version.version)),
            ContextLine(text=line),
        ),
    )


async def _close_review_messages(
    ctx: Context, draft: Draft, version: DraftVersion, line: str
) -> None:
    settings = workspace_settings.load(ctx.workspace)
    ref = f"review:{draft.id}:{version.version}"
    refs = [ref] if settings.review_channel else [f"{ref}:{r}" for r in settings.reviewers]
    for ref_key in refs:
        if not await ctx.cancel(ref_key):
            await ctx.update(ref_key, _closed_review(version, line), key=f"{ref_key}:closed")


def _audit(
    ctx: Context,
    draft: Draft,
    request: ContentRequest,
    version: int,
    action: str,
    comment: str | None,
) -> None:
    ctx.session.add(
        AuditEvent(
            workspace_id=ctx.workspace_id,
            request_id=request.id or 0,
            draft_id=draft.id,
            version=version,
            actor_id=ctx.member_id,
            action=action,
            comment=comment,
            created_at=ctx.now,
        )
    )


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80] or "post"


async def unique_slug(session: AsyncSession, workspace_id: int, title: str) -> str:
    """The title as a slug no other post of the workspace has."""
    base = slugify(title)
    taken = set(
        (
            await session.exec(
                select(Post.slug).where(
                    Post.workspace_id == workspace_id, Post.slug.startswith(base)
                )
            )
        ).all()
    )
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, 10_000) if f"{base}-{n}" not in taken)


async def approve(ctx: Context, action: Action) -> Reply:
    """`review_approve`: the version becomes a Post; requester and expert hear it's live."""
    draft, version, request = await _target(ctx, action.value)
    _may_decide(ctx, draft, version)
    if not await move(ctx.session, request, Status.APPROVED, ctx.now):
        raise InvalidTransition("Someone decided on this draft a moment ago.")
    move_draft(draft, DraftStatus.APPROVED, ctx.now)
    ctx.session.add(draft)
    slug = await unique_slug(ctx.session, ctx.workspace_id, version.title)
    post = Post(
        workspace_id=ctx.workspace_id,
        request_id=request.id,
        draft_id=draft.id or 0,
        version=version.version,
        slug=slug,
        title=version.title,
        summary=_summary(version.body),
        body=version.body,
        canonical_url=version.canonical_url,
        captions=list(version.captions),
        tags=list(version.tags),
        author_id=draft.author_id,
        approved_by_id=ctx.member_id,
        ai_assisted=version.ai_assisted,
        published_at=ctx.now,
    )
    ctx.session.add(post)
    await move(ctx.session, request, Status.PUBLISHED, ctx.now)
    _audit(ctx, draft, request, version.version, "approved", None)
    await _close_review_messages(ctx, draft, version, md("✅ Approved by {}.", mention(ctx.member)))
    author = await ctx.session.get(Member, draft.author_id)
    requester = await ctx.session.get(Member, request.requester_id)
    assert author is not None and requester is not None
    await ctx.session.flush()
    await distribution.start(ctx, post, author=author, requester=requester)
    await ctx.send(
        dm(requester.user_id),
        Message(
            text=f"Your request is live: {version.title}",
            blocks=(
                Section(text=md("🎉 Your request is live: *{}*", version.title)),
                ContextLine(text=md("Written by {} for “{}”.", mention(author), request.topic)),
            ),
        ),
        key=f"post:{draft.id}:requester",
        unprompted=True,
    )
    await ctx.send(
        dm(author.user_id),
        Message(
            text=f"Thank you — it's live: {version.title}",
            blocks=(
                Section(text=md("Thank you — *{}* is live.", version.title)),
                ContextLine(
                    text=md(
                        "Approved by {}. {} has been told.", mention(ctx.member), mention(requester)
                    )
                ),
            ),
        ),
        key=f"post:{draft.id}:author",
        unprompted=True,
    )
    return Reply.say(f"Approved: “{version.title}” is live.")


def _summary(body: str) -> str:
    first = " ".join(body.split())
    return first if len(first) <= SUMMARY_MAX else first[: SUMMARY_MAX - 1].rsplit(" ", 1)[0] + "…"


async def open_decision(ctx: Context, action: Action) -> Reply:
    """`review_changes` / `review_reject`: a comment is required, so ask for it."""
    draft, version, _ = await _target(ctx, action.value)
    _may_decide(ctx, draft, version)
    changes = action.action == "review_changes"
    return Reply(
        form=Form(
            form_id=FORM_ID,
            title="Ask for changes" if changes else "Reject the draft",
            submit_label="Send" if changes else "Reject",
            intro=(Section(text=md("*{}* — version {}", version.title, version.version)),),
            fields=(
                TextField(
                    name="comment",
                    label="What should change?" if changes else "Why is it rejected?",
                    multiline=True,
                    max_length=COMMENT_MAX,
                ),
            ),
            state=f"{'changes' if changes else 'reject'}:{draft.id}:{version.version}",
        )
    )


async def decide(ctx: Context, submission: Submission) -> Reply:
    """The review form: changes requested (back to the author) or rejected (for good)."""
    decision, _, target = submission.state.partition(":")
    if decision not in ("changes", "reject"):
        raise NotFound("That review form is out of date — please use the buttons again.")
    raw = submission.values.get("comment")
    comment = (raw if isinstance(raw, str) else "").strip()
    if not comment:
        raise FormInvalid(
            {
                "comment": "Say what should change."
                if decision == "changes"
                else "Give the reason — the author will read it."
            }
        )
    if len(comment) > COMMENT_MAX:
        raise FormInvalid({"comment": f"Keep it under {COMMENT_MAX} characters."})
    draft, version, request = await _target(ctx, target)
    _may_decide(ctx, draft, version)
    author = await ctx.session.get(Member, draft.author_id)
    requester = await ctx.session.get(Member, request.requester_id)
    assert author is not None and requester is not None
    if decision == "changes":
        if not await move(ctx.session, request, Status.CHANGES_REQUESTED, ctx.now):
            raise InvalidTransition("Someone decided on this draft a moment ago.")
        move_draft(draft, DraftStatus.CHANGES_REQUESTED, ctx.now)
        _audit(ctx, draft, request, version.version, "changes_requested", comment)
        await _close_review_messages(
            ctx, draft, version, md("✏️ Changes requested by {}.", mention(ctx.member))
        )
        await ctx.send(
            dm(author.user_id),
            Message(
                text=f"Changes requested on {version.title}",
                blocks=(
                    Section(
                        text=md(
                            "{} asked for changes on *{}* (version {}):",
                            mention(ctx.member),
                            version.title,
                            version.version,
                        )
                    ),
                    Section(text=quoted(comment)),
                    Buttons(
                        buttons=(
                            Button(
                                label="Edit draft",
                                action=actions.DRAFT_OPEN,
                                value=str(request.id),
                                style="primary",
                            ),
                        )
                    ),
                ),
            ),
            key=f"review:{draft.id}:{version.version}:changes",
            unprompted=True,
        )
    else:
        if not await move(ctx.session, request, Status.DECLINED, ctx.now):
            raise InvalidTransition("Someone decided on this draft a moment ago.")
        move_draft(draft, DraftStatus.REJECTED, ctx.now)
        _audit(ctx, draft, request, version.version, "rejected", comment)
        await _close_review_messages(
            ctx, draft, version, md("Rejected by {}.", mention(ctx.member))
        )

        for person, key in ((author, "author"), (requester, "requester")):
            await ctx.send(
                dm(person.user_id),
                notice(f"“{version.title}” was not approved: {comment}"),
                key=f"review:{draft.id}:{version.version}:rejected:{key}",
                unprompted=True,
            )
    ctx.session.add(draft)
    return NO_REPLY


def register(router: Router) -> None:
    router.action(actions.REVIEW_APPROVE)(approve)
    router.action(actions.REVIEW_CHANGES)(open_decision)
    router.action(actions.REVIEW_REJECT)(open_decision)
    router.form(FORM_ID)(decide)
