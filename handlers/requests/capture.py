"""Capture: asking for content, and +1s that make demand visible instead of duplicates."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from handlers.core import actions, lookup
from handlers.core.context import Context, dm
from handlers.core.errors import FormInvalid, InvalidTransition
from handlers.core.ids import parse_id
from handlers.core.interactions import NO_REPLY, Action, Command, Reply, Submission
from handlers.core.lifecycle import ACTIVE, LABELS, Status
from handlers.core.lookup import REQUEST_GONE
from handlers.core.markup import Markup, md
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    DateField,
    Form,
    FormValue,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
    notice,
)
from handlers.core.wording import clip, first, their_zone
from handlers.home import view
from handlers.requests import demand
from handlers.routing.similarity import most_similar
from storage.models import ContentRequest, Vote
from storage.upsert import insert_ignore

if TYPE_CHECKING:
    from handlers.core.router import Router

FORM_ID = "request_form"
TOPIC_MAX = 200
CONTEXT_MAX = 3000
AUDIENCE_MAX = 200
TAGS_MAX = 10
TAG_MAX = 40
NEW_REQUEST = "new"
# How many open requests are compared with a new one; the newest matter most.
SIMILARITY_WINDOW = 500


async def open_form(ctx: Context, command: Command) -> Reply:
    """`request [topic]`: the request form, prefilled, and similar requests to +1 instead."""
    source = command.source
    topic, context = command.text.strip(), ""
    if source is not None:
        first, rest = _topic_and_context(source.text)
        topic = topic or first
        context = rest[:CONTEXT_MAX]
    permalink = source.permalink if source else None
    similar = await similar_requests(ctx, topic) if topic else []
    if not command.origin.can_open_forms:
        return Reply(message=_form_invitation(topic, similar))
    return Reply(
        form=request_form(topic=topic, context=context, permalink=permalink, similar=similar)
    )


async def open_form_from_button(ctx: Context, action: Action) -> Reply:
    """`request_open`: the form, from a button (where a command could not open it)."""
    similar = await similar_requests(ctx, action.value) if action.value else []
    return Reply(form=request_form(topic=action.value[:TOPIC_MAX], similar=similar))


def request_form(
    *,
    topic: str = "",
    context: str = "",
    audience: str = "",
    needed_by: str = "",
    tags: str = "",
    permalink: str | None = None,
    similar: list[tuple[ContentRequest, int]] | None = None,
) -> Form:
    """The request form; with similar open requests, a choice to +1 one of them instead."""
    intro: tuple[Any, ...] = ()
    fields: list[Any] = []
    if similar:
        intro = (
            Section(
                text=Markup(
                    "*Colleagues already asked something close.* "
                    "A +1 tells experts the demand is real:"
                )
            ),
            *(
                ContextLine(
                    text=f"• {r.topic} — {demand.wanted(votes)} · {LABELS[Status(r.status)]}"
                )
                for r, votes in similar
            ),
        )
        fields.append(
            SelectField(
                name="similar",
                label="Is yours one of these?",
                options=(
                    *(
                        Option(value=str(r.id), label=f"+1 “{clip(r.topic, 60)}”")
                        for r, _ in similar
                    ),
                    Option(value=NEW_REQUEST, label="No, mine is a different request"),
                ),
                initial=(str(similar[0][0].id),),
            )
        )
    fields += [
        TextField(
            name="topic",
            label="What do buyers ask?",
            initial=topic[:TOPIC_MAX],
            placeholder="How do we migrate Oracle to PostgreSQL without downtime?",
            max_length=TOPIC_MAX,
        ),
        TextField(
            name="context",
            label="Context / customer problem",
            initial=context[:CONTEXT_MAX],
            multiline=True,
            max_length=CONTEXT_MAX,
            optional=True,
        ),
        TextField(
            name="audience",
            label="Audience",
            initial=audience,
            placeholder="CTOs of mid-size retailers",
            max_length=AUDIENCE_MAX,
            optional=True,
        ),
        DateField(name="needed_by", label="Needed by", initial=needed_by, optional=True),
        TextField(
            name="tags",
            label="Tags",
            initial=tags,
            placeholder="postgresql, migration",
            hint=f"Comma-separated, up to {TAGS_MAX}.",
            optional=True,
        ),
    ]
    return Form(
        form_id=FORM_ID,
        title="Request content",
        submit_label="Request",
        intro=intro,
        fields=tuple(fields),
        state=json.dumps({"permalink": permalink}) if permalink else "",
    )


async def submit(ctx: Context, submission: Submission) -> Reply:
    """Validate and store a request, or count a +1 on the similar one the person chose."""
    values = submission.values
    choice = first(values.get("similar"))
    if choice and choice != NEW_REQUEST:
        request_id = _request_id(choice)
        count = await vote_for(ctx, request_id)
        request = await get_request(ctx, request_id)
        await ctx.send(
            dm(ctx.member.user_id),
            notice(f"Your +1 on “{request.topic}” is counted — {demand.wanted(count)}."),
            key=f"vote:{request_id}:{ctx.member.id}",
        )
        return NO_REPLY
    fields = _validate(values, today=_today(ctx))
    state = _state(submission.state)
    if "similar" not in values:
        similar = await similar_requests(ctx, fields["topic"])
        if similar:
            # Show the person what exists before adding a duplicate; their answers stay.
            return Reply(
                form=request_form(
                    topic=fields["topic"],
                    context=fields["context"],
                    audience=fields["audience"],
                    needed_by=fields["needed_by"].isoformat() if fields["needed_by"] else "",
                    tags=", ".join(fields["tags"]),
                    permalink=state.get("permalink"),
                    similar=similar,
                )
            )
    request = ContentRequest(
        workspace_id=ctx.workspace_id,
        requester_id=ctx.member_id,
        topic=fields["topic"],
        context=fields["context"],
        audience=fields["audience"],
        needed_by=fields["needed_by"],
        tags=fields["tags"],
        status=Status.OPEN,
        source_permalink=state.get("permalink"),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    await ctx.send(dm(ctx.member.user_id), _captured(request), key=f"request:{request.id}:captured")
    await view.refresh(ctx)
    return NO_REPLY


async def vote(ctx: Context, action: Action) -> Reply:
    """`request_vote`: +1 a request; a second +1 by the same person counts once."""
    count = await vote_for(ctx, _request_id(action.value))
    return Reply.say(f"Thanks — your +1 is counted. {demand.wanted(count).capitalize()} now.")


async def vote_for(ctx: Context, request_id: int) -> int:
    """Record the actor's +1 on a request of this workspace; returns the new vote count."""
    request = await get_request(ctx, request_id)
    if request.requester_id == ctx.member.id:
        raise InvalidTransition("You asked for this one — your request already counts.")
    # Unmet demand (no expert was found) takes +1s too: they are what makes it visible.
    if Status(request.status) not in ACTIVE | {Status.DECLINED}:
        raise InvalidTransition(
            f"That request is {LABELS[Status(request.status)]}, so it no longer takes +1s."
        )
    inserted = await insert_ignore(
        ctx.session,
        Vote.__table__,  # type: ignore[attr-defined]
        {
            "workspace_id": ctx.workspace_id,
            "request_id": request.id,
            "member_id": ctx.member.id,
            "created_at": ctx.now,
        },
        ("request_id", "member_id"),
    )
    if not inserted:
        raise InvalidTransition("You've already +1'd this request — it counts once. Thank you!")
    await view.refresh(ctx)
    return await vote_count(ctx, request_id)


async def get_request(ctx: Context, request_id: int) -> ContentRequest:
    """A request of the actor's workspace; another workspace's id is as good as unknown."""
    return await lookup.get(ctx, ContentRequest, request_id, REQUEST_GONE)


async def vote_count(ctx: Context, request_id: int) -> int:
    return (await demand.vote_counts(ctx, [request_id])).get(request_id, 0)


async def similar_requests(ctx: Context, topic: str) -> list[tuple[ContentRequest, int]]:
    """Active requests of this workspace that ask the same thing, with their +1 counts."""
    query = (
        select(ContentRequest)
        .where(
            ContentRequest.workspace_id == ctx.workspace_id,
            col(ContentRequest.status).in_([s.value for s in ACTIVE]),
        )
        .order_by(col(ContentRequest.id).desc())
        .limit(SIMILARITY_WINDOW)
    )
    candidates = (await ctx.session.exec(query)).all()
    matches = [r for r, _ in most_similar(topic, ((r, r.topic) for r in candidates))]
    counts = await demand.vote_counts(ctx, [r.id for r in matches if r.id is not None])
    return [(r, counts.get(r.id or 0, 0)) for r in matches]


def _validate(values: dict[str, FormValue], *, today: date) -> dict[str, Any]:
    errors: dict[str, str] = {}
    topic = first(values.get("topic")).strip()
    if not topic:
        errors["topic"] = "Tell us what buyers ask — a question or a topic."
    elif len(topic) > TOPIC_MAX:
        errors["topic"] = (
            f"Keep it under {TOPIC_MAX} characters ({len(topic)} now); details go in Context."
        )
    context = first(values.get("context")).strip()
    if len(context) > CONTEXT_MAX:
        errors["context"] = f"Context is limited to {CONTEXT_MAX} characters ({len(context)} now)."
    audience = first(values.get("audience")).strip()
    if len(audience) > AUDIENCE_MAX:
        errors["audience"] = f"Audience is limited to {AUDIENCE_MAX} characters."
    needed_by: date | None = None
    raw_date = first(values.get("needed_by")).strip()
    if raw_date:
        try:
            needed_by = date.fromisoformat(raw_date)
        except ValueError:
            errors["needed_by"] = "Use a date like 2026-12-31."
        else:
            if needed_by < today:
                errors["needed_by"] = "That date has passed — pick today or later."
    tags = _tags(first(values.get("tags")))
    if len(tags) > TAGS_MAX:
        errors["tags"] = f"Up to {TAGS_MAX} tags, please ({len(tags)} given)."
    elif any(len(t) > TAG_MAX for t in tags):
        errors["tags"] = f"Each tag is at most {TAG_MAX} characters."
    if errors:
        raise FormInvalid(errors)
    return {
        "topic": topic,
        "context": context,
        "audience": audience,
        "needed_by": needed_by,
        "tags": tags,
    }


def _tags(raw: str) -> list[str]:
    seen: dict[str, None] = {}
    for tag in raw.replace("#", " ").split(","):
        tag = " ".join(tag.split()).lower()
        if tag:
            seen.setdefault(tag)
    return list(seen)


def _today(ctx: Context) -> date:
    return ctx.now.astimezone(their_zone(ctx.member, ctx.workspace)).date()


def _state(raw: str) -> dict[str, Any]:
    try:
        state = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, dict) else {}


def _request_id(raw: str) -> int:
    return parse_id(raw, "I can't find that request — it may have been removed.")


def _topic_and_context(text: str) -> tuple[str, str]:
    """A message a request starts from: its first line is the topic (without a leading
    `request`, as the message may have been written to the bot), the rest its context. A
    first line too long for a topic keeps the whole message as context."""
    lines = [part.strip() for part in text.strip().splitlines()]
    first = lines[0] if lines else ""
    words = first.split(maxsplit=1)
    if len(words) == 2 and words[0].lower() == "request":
        first = words[1]
    rest = "\n".join(lines[1:]).strip()
    if len(first) > TOPIC_MAX:
        return clip(first, TOPIC_MAX), text.strip()
    return first, rest


def _captured(request: ContentRequest) -> Message:
    due = f" by {request.needed_by:%a %d %b}" if request.needed_by else ""
    return Message(
        text=f"Request captured: {request.topic}",
        blocks=(
            Section(text=md("✅ *Request captured:* {}", request.topic)),
            ContextLine(
                text=f"I'll look for colleagues who know this topic{due}. "
                "Colleagues can +1 it from their Flywheel home."
            ),
        ),
    )


def _form_invitation(topic: str, similar: list[tuple[ContentRequest, int]]) -> Message:
    blocks: list[Any] = []
    for request, votes in similar:
        blocks.append(
            Section(
                text=md(
                    "*Already asked:* {}\n{} · {}",
                    request.topic,
                    demand.wanted(votes),
                    LABELS[Status(request.status)],
                ),
                button=Button(label="+1", action=actions.REQUEST_VOTE, value=str(request.id)),
            )
        )
    blocks.append(
        Buttons(
            buttons=(
                Button(
                    label="Request anyway" if similar else "Fill in the request",
                    action=actions.REQUEST_OPEN,
                    value=topic[:TOPIC_MAX],
                    style="primary",
                ),
            )
        )
    )
    lead = "Colleagues asked something close — +1 it, or" if similar else "Let's capture it:"
    return Message(
        text=f"{lead} request “{topic}”" if topic else "Request content",
        blocks=(Section(text=lead), *blocks),
    )


def register(router: Router) -> None:
    router.command(
        "request",
        usage="request [topic]",
        summary="ask for content; opens a form prefilled with the topic",
    )(open_form)
    router.action(actions.REQUEST_OPEN)(open_form_from_button)
    router.action(actions.REQUEST_VOTE)(vote)
    router.form(FORM_ID)(submit)
