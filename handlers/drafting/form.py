"""Drafting: the assigned expert writes (with AI help when configured) and submits for review."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import structlog
from sqlmodel import col, select

from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Context, Scope, channel, dm
from handlers.core.errors import FormInvalid, InvalidTransition, NotAllowed
from handlers.core.ids import parse_id
from handlers.core.interactions import NO_REPLY, Action, Reply, Submission
from handlers.core.lifecycle import Status, move
from handlers.core.lookup import DRAFT_GONE, REQUEST_GONE
from handlers.core.markup import md
from handlers.core.members import mention
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Form,
    FormValue,
    Message,
    Section,
    TextField,
)
from handlers.core.wording import clip, joined
from handlers.drafting.ai import (
    BODY_MAX,
    TITLE_MAX,
)
from handlers.drafting.compliance import Content, check
from handlers.drafting.draft_status import DraftStatus, move_draft, require_editable
from storage.models import (
    AuditEvent,
    ContentRequest,
    Draft,
    DraftVersion,
    Member,
)

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

FORM_ID = "draft_form"
# LinkedIn's post limit is also the most a Slack text input takes: 3,000 characters.
URL_MAX = 2000
CAPTION_MAX = 3000
CAPTIONS = 3
TAGS_MAX = 10
DIFF_MAX = 2500


# -- finding things ---------------------------------------------------------------------


async def request_of(ctx: Scope, request_id: int) -> ContentRequest:
    """The request `request_id` of this workspace, or a polite not-found."""
    return await lookup.get(ctx, ContentRequest, request_id, REQUEST_GONE)


async def _draft(ctx: Scope, draft_id: int) -> Draft:
    return await lookup.get(ctx, Draft, draft_id, DRAFT_GONE)


def id_from(raw: str, what: str) -> int:
    """The id a button or form carries, or a polite not-found naming `what`."""
    return parse_id(raw, f"I can't find that {what}.")


async def working_draft(ctx: Context, request: ContentRequest) -> Draft:
    """The request's draft, created on first use; only its assigned expert may touch it."""
    if request.assignee_id != ctx.member_id:
        raise NotAllowed("Only the expert who claimed this request can draft it.")
    draft = (await ctx.session.exec(select(Draft).where(Draft.request_id == request.id))).first()
    if draft is None:
        draft = Draft(
            workspace_id=ctx.workspace_id,
            request_id=request.id or 0,
            author_id=ctx.member_id,
            title=request.topic[:TITLE_MAX],
            tags=list(request.tags),
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        ctx.session.add(draft)
        await ctx.session.flush()
    return draft


# -- the form -----------------------------------------------------------------------------


async def last_comment(ctx: Scope, draft: Draft) -> AuditEvent | None:
    query = (
        select(AuditEvent)
        .where(AuditEvent.draft_id == draft.id, AuditEvent.action == "changes_requested")
        .order_by(col(AuditEvent.id).desc())
    )
    return (await ctx.session.exec(query)).first()


async def draft_form(ctx: Scope, draft: Draft, request: ContentRequest) -> Form:
    """The draft form, prefilled with the working copy."""
    intro: list[Block] = [Section(text=md("*Request:* {}", request.topic))]
    if request.context:
        intro.append(ContextLine(text=clip(request.context, 500)))
    if draft.ai_label:
        intro.append(ContextLine(text=f"✨ {draft.ai_label}"))
    if draft.status == DraftStatus.CHANGES_REQUESTED:
        comment = await last_comment(ctx, draft)
        if comment and comment.comment:
            intro.append(Section(text=md("*Changes requested:* {}", comment.comment)))
    captions = [*draft.captions, "", "", ""][:CAPTIONS]
    return Form(
        form_id=FORM_ID,
        title="Your draft",
        submit_label="Save",
        intro=tuple(intro),
        fields=(
            TextField(name="title", label="Title", initial=draft.title, max_length=TITLE_MAX),
            TextField(
                name="body",
                label="Body",
                initial=draft.body,
                multiline=True,
                max_length=BODY_MAX,
                hint=f"Up to {BODY_MAX} characters; publish a longer piece and give its URL.",
            ),
            TextField(
                name="canonical_url",
                label="Published at (URL)",
                initial=draft.canonical_url or "",
                optional=True,
                placeholder="https://blog.example.com/zero-downtime-migrations",
                hint="When the piece lives elsewhere (a blog, a LinkedIn article).",
            ),
            *(
                TextField(
                    name=f"caption_{i + 1}",
                    label=f"Share caption {i + 1}",
                    initial=caption,
                    multiline=True,
                    optional=i > 0,
                    max_length=CAPTION_MAX,
                    hint="What a colleague might write when sharing it." if i == 0 else "",
                )
                for i, caption in enumerate(captions)
            ),
            TextField(name="tags", label="Tags", initial=", ".join(draft.tags), optional=True),
        ),
        state=str(draft.id),
    )


def _saved_message(draft: Draft, request: ContentRequest, ai_enabled: bool) -> Message:
    value = str(draft.id)
    buttons = [
        Button(
            label="Submit for review", action=actions.DRAFT_SUBMIT, value=value, style="primary"
        ),
        Button(label="Edit", action=actions.DRAFT_OPEN, value=str(request.id)),
    ]
    if ai_enabled:
        buttons.append(Button(label="AI help", action=actions.DRAFT_AI, value=str(request.id)))
    return Message(
        text=f"Draft saved: {draft.title}",
        blocks=(
            Section(text=md("💾 Draft saved: *{}*", draft.title)),
            ContextLine(text="Submit it when you're happy; a reviewer will look at it next."),
            Buttons(buttons=tuple(buttons)),
        ),
    )


async def open_draft(ctx: Context, action: Action) -> Reply:
    """`draft_open`: the draft form for a request I claimed."""
    request = await request_of(ctx, id_from(action.value, "request"))
    draft = await working_draft(ctx, request)
    require_editable(draft)
    return Reply(form=await draft_form(ctx, draft, request))


async def save(ctx: Context, submission: Submission) -> Reply:
    """The draft form was submitted: validate and save the working copy."""
    draft = await _draft(ctx, id_from(submission.state, "draft"))
    request = await request_of(ctx, draft.request_id)
    if request.assignee_id != ctx.member_id:
        raise NotAllowed("Only the expert who claimed this request can draft it.")
    require_editable(draft)
    fields = validate(submission.values)
    changed = (draft.title, draft.body) != (fields["title"], fields["body"])
    draft.title, draft.body = fields["title"], fields["body"]
    draft.canonical_url, draft.captions, draft.tags = (
        fields["canonical_url"],
        fields["captions"],
        fields["tags"],
    )
    if changed and draft.ai_label and not draft.ai_assisted:
        draft.ai_label = None  # the template was only scaffolding: the text is the expert's now
    draft.updated_at = ctx.now
    ctx.session.add(draft)
    await ctx.send(
        dm(ctx.member.user_id),
        _saved_message(draft, request, ctx.config.ai_enabled),
        key=f"draft:{draft.id}:saved:{ctx.now.isoformat()}",
    )
    return NO_REPLY


def validate(values: dict[str, FormValue]) -> dict[str, Any]:
    """Check the draft form; every problem at once, nothing written."""
    errors: dict[str, str] = {}
    title = joined(values.get("title")).strip()
    body = joined(values.get("body")).strip()
    url = joined(values.get("canonical_url")).strip() or None
    if not title:
        errors["title"] = "Give it a title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters ({len(title)} now)."
    if not body:
        errors["body"] = "Write the body — even a few paragraphs."
    elif len(body) > BODY_MAX:
        errors["body"] = (
            f"The body is limited to {BODY_MAX} characters ({len(body)} now); "
            "publish longer pieces and give their URL."
        )
    web = url is not None and url.lower().startswith(("http://", "https://"))
    if url is not None and (not web or " " in url or len(url) > URL_MAX):
        errors["canonical_url"] = "Use a web address starting with https:// (or http://)."
    captions = []
    for i in range(CAPTIONS):
        name = f"caption_{i + 1}"
        caption = joined(values.get(name)).strip()
        if len(caption) > CAPTION_MAX:
            errors[name] = f"A caption is at most {CAPTION_MAX} characters ({len(caption)} now)."
        elif caption:
            captions.append(caption)
    if not captions and "caption_1" not in errors:
        errors["caption_1"] = "Suggest at least one caption colleagues can share it with."
    tags = list(
        dict.fromkeys(t.strip().lower() for t in joined(values.get("tags")).split(",") if t.strip())
    )
    if len(tags) > TAGS_MAX:
        errors["tags"] = f"Up to {TAGS_MAX} tags, please."
    if errors:
        raise FormInvalid(errors)
    return {"title": title, "body": body, "canonical_url": url, "captions": captions, "tags": tags}


# -- submitting ---------------------------------------------------------------------------


def diff(previous: DraftVersion | None, draft: Draft) -> str:
    """What changed since the previous version, as a unified diff (clipped)."""
    if previous is None:
        return ""
    before = [f"# {previous.title}", *previous.body.splitlines()]
    after = [f"# {draft.title}", *draft.body.splitlines()]
    lines = list(
        difflib.unified_diff(
            before, after, f"v{previous.version}", f"v{previous.version + 1}", lineterm="", n=1
        )
    )
    return clip("\n".join(lines[2:]), DIFF_MAX) if lines else "(no change to the text)"


def review_message(
    draft: Draft, version: DraftVersion, request: ContentRequest, author: Member, changes: str
) -> Message:
    value = f"{draft.id}:{version.version}"
    blocks: list[Block] = [
        Section(
            text=md(
                "*Review:* {} — version {} by {}", version.title, version.version, mention(author)
            )
        ),
        Section(text=clip(version.body, 2800)),
    ]
    if version.canonical_url:
        blocks.append(ContextLine(text=f"Published at {version.canonical_url}"))
    if version.captions:
        blocks.append(
            ContextLine(text="Captions: " + " | ".join(clip(c, 200) for c in version.captions))
        )
    blocks.append(
        ContextLine(
            text=f"Requested: {request.topic}"
            + (" · ✨ AI-assisted" if version.ai_assisted else "")
        )
    )
    if changes:
        blocks.append(
            Section(text=md("*Changes since version {}:*\n```{}```", version.version - 1, changes))
        )
    blocks.append(
        Buttons(
            buttons=(
                Button(
                    label="Approve", action=actions.REVIEW_APPROVE, value=value, style="primary"
                ),
                Button(label="Ask for changes", action=actions.REVIEW_CHANGES, value=value),
                Button(label="Reject", action=actions.REVIEW_REJECT, value=value, style="danger"),
            )
        )
    )
    return Message(
        text=f"Please review: {version.title} (version {version.version})", blocks=tuple(blocks)
    )


async def submit(ctx: Context, action: Action) -> Reply:
    """`draft_submit`: compliance first, then a new version goes to the reviewers."""
    draft = await _draft(ctx, id_from(action.value, "draft"))
    request = await request_of(ctx, draft.request_id)
    if request.assignee_id != ctx.member_id:
        raise NotAllowed("Only the expert who claimed this request can submit its draft.")
    require_editable(draft)
    if not draft.title.strip() or not draft.body.strip() or not draft.captions:
        raise InvalidTransition(
            "The draft needs a title, a body and a caption before review — open it with Edit."
        )
    settings = workspace_settings.load(ctx.workspace)
    failures = check(
        Content(draft.title, draft.body, draft.canonical_url, tuple(draft.captions)),
        settings.compliance(),
    )
    if failures:
        raise InvalidTransition(
            "Before a reviewer sees it, please fix:\n" + "\n".join(f"• {f}" for f in failures)
        )
    if not settings.reviewers:
        raise InvalidTransition(
            "No reviewers are set up yet — ask an admin to choose reviewers with `admin`."
        )
    target = Status.IN_REVIEW
    if not await move(ctx.session, request, target, ctx.now):
        raise InvalidTransition(
            "This request changed while you were submitting — please try again."
        )
    previous = (
        await ctx.session.exec(
            select(DraftVersion).where(
                DraftVersion.draft_id == draft.id, DraftVersion.version == draft.version
            )
        )
    ).first()
    draft.version += 1
    move_draft(draft, DraftStatus.IN_REVIEW, ctx.now)
    version = DraftVersion(
        workspace_id=ctx.workspace_id,
        draft_id=draft.id or 0,
        version=draft.version,
        title=draft.title,
        body=draft.body,
        canonical_url=draft.canonical_url,
        captions=list(draft.captions),
        tags=list(draft.tags),
        ai_assisted=draft.ai_assisted,
        submitted_by_id=ctx.member_id,
        submitted_at=ctx.now,
    )
    ctx.session.add_all([draft, version])
    ctx.session.add(
        AuditEvent(
            workspace_id=ctx.workspace_id,
            request_id=request.id or 0,
            draft_id=draft.id,
            version=draft.version,
            actor_id=ctx.member_id,
            action="submitted",
            created_at=ctx.now,
        )
    )
    message = review_message(draft, version, request, ctx.member, diff(previous, draft))
    ref = f"review:{draft.id}:{draft.version}"
    if settings.review_channel:
        await ctx.send(channel(settings.review_channel), message, key=ref, ref_key=ref)
    else:
        for reviewer in settings.reviewers:
            if reviewer != ctx.member.user_id:
                await ctx.send(
                    dm(reviewer),
                    message,
                    key=f"{ref}:{reviewer}",
                    ref_key=f"{ref}:{reviewer}",
                    unprompted=True,
                )
    return Reply.say(
        f"Sent for review: “{draft.title}” (version {draft.version}). "
        "I'll tell you what the reviewers say."
    )


def register(router: Router) -> None:
    router.action(actions.DRAFT_OPEN)(open_draft)
    router.action(actions.DRAFT_SUBMIT)(submit)
    router.form(FORM_ID)(save)
