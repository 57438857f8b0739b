"""The expert directory: people say what they know and how much they can take on."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import actions
from handlers.core.context import Context, dm
from handlers.core.errors import FormInvalid
from handlers.core.interactions import NO_REPLY, Action, Command, Reply, Submission
from handlers.core.lifecycle import LABELS, Status
from handlers.core.markup import labelled
from handlers.core.members import ensure_member
from handlers.core.messages import (
    Block,
    Button,
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
from handlers.core.ports import Directory
from handlers.core.wording import joined, plural, their_zone
from handlers.routing.words import terms
from storage.models import ContentRequest, ExpertProfile, Member, Workspace

if TYPE_CHECKING:
    from datetime import datetime

    from handlers.core.router import Router

FORM_ID = "expert_form"
MAX_TOPICS = 30
TOPIC_MAX = 50
BIO_MAX = 1000
CAPACITY_MAX = 20
DEFAULT_CAPACITY = 2
KNOWN_TOPICS = 100
CSV_COLUMNS = ("email", "name", "topics", "bio", "capacity")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
_TOPIC_SPLIT = re.compile(r"[;,|\n]")
# On saving a profile, up to OFFER_LIMIT matching requests among the newest OFFER_WINDOW.
OFFER_LIMIT = 5
OFFER_WINDOW = 200


def normalise_topics(raw: Iterable[str]) -> list[str]:
    """Lower-case, single-spaced, de-duplicated topics, in the order given."""
    seen: dict[str, None] = {}
    for topic in raw:
        cleaned = " ".join(topic.replace("#", " ").split()).lower()
        if cleaned:
            seen.setdefault(cleaned)
    return list(seen)


async def known_topics(session: AsyncSession, workspace_id: int) -> list[str]:
    """Topics already used in this workspace (experts' topics, request tags), commonest first."""
    counts: Counter[str] = Counter()
    for topics in (
        await session.exec(
            select(ExpertProfile.topics).where(ExpertProfile.workspace_id == workspace_id)
        )
    ).all():
        counts.update(topics)
    tags = (
        select(ContentRequest.tags)
        .where(ContentRequest.workspace_id == workspace_id)
        .order_by(col(ContentRequest.id).desc())
        .limit(500)
    )
    for request_tags in (await session.exec(tags)).all():
        counts.update(request_tags)
    return [topic for topic, _ in counts.most_common(KNOWN_TOPICS)]


async def profile_of(session: AsyncSession, member: Member) -> ExpertProfile | None:
    query = select(ExpertProfile).where(ExpertProfile.member_id == member.id)
    return (await session.exec(query)).first()


async def open_form(ctx: Context, command: Command) -> Reply:
    """`expert`: create or edit my profile."""
    profile = await profile_of(ctx.session, ctx.member)
    current = profile.topics if profile else []
    known = [t for t in await known_topics(ctx.session, ctx.workspace_id) if len(t) <= TOPIC_MAX]
    chosen = tuple(t for t in current if t in known)
    others = [t for t in current if t not in known]
    fields: list[TextField | SelectField | DateField] = []
    if known:
        fields.append(
            SelectField(
                name="known_topics",
                label="Topics you know",
                options=tuple(Option(value=t, label=t) for t in known),
                initial=chosen,
                multi=True,
                optional=True,
                hint="Topics colleagues already use here.",
            )
        )
    fields += [
        TextField(
            name="other_topics",
            label="Other topics" if known else "Topics you know",
            initial=", ".join(others),
            placeholder="kubernetes, zero downtime, postgresql",
            hint=f"Comma-separated; up to {MAX_TOPICS} topics in all.",
            optional=bool(known),
            multiline=True,
        ),
        TextField(
            name="bio",
            label="A short bio",
            initial=profile.bio if profile else "",
            multiline=True,
            max_length=BIO_MAX,
            optional=True,
            placeholder="What you have built, sold or fixed.",
        ),
        TextField(
            name="capacity",
            label="Most requests at once",
            initial=str(profile.capacity if profile else DEFAULT_CAPACITY),
            max_length=2,
            hint=f"0 pauses new requests; at most {CAPACITY_MAX}.",
        ),
        DateField(
            name="snoozed_until",
            label="Snooze until",
            optional=True,
            initial=profile.snoozed_until.isoformat() if profile and profile.snoozed_until else "",
            hint="No new requests until this date.",
        ),
    ]
    return Reply(
        form=Form(
            form_id=FORM_ID, title="Your expert profile", submit_label="Save", fields=tuple(fields)
        )
    )


async def submit(ctx: Context, submission: Submission) -> Reply:
    values = submission.values
    today = ctx.now.astimezone(their_zone(ctx.member, ctx.workspace)).date()
    topics, bio, capacity, snoozed_until = validate_profile(values, today=today)
    profile = await profile_of(ctx.session, ctx.member)
    if profile is None:
        profile = ExpertProfile(
            workspace_id=ctx.workspace_id,
            member_id=ctx.member_id,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    profile.topics, profile.bio, profile.capacity, profile.snoozed_until = (
        topics,
        bio,
        capacity,
        snoozed_until,
    )
    profile.updated_at = ctx.now
    ctx.session.add(profile)
    snooze = f" Snoozed until {snoozed_until:%a %d %b}." if snoozed_until else ""
    saved = (
        f"Your expert profile is saved: {', '.join(topics)}. "
        f"Up to {plural(capacity, 'request')} at once.{snooze}"
    )
    offered = await matching_requests(ctx, topics)
    await ctx.send(
        dm(ctx.member.user_id),
        offer_message(saved, offered) if offered else notice(saved),
        key=f"expert:{ctx.member.id}:{ctx.now.isoformat()}",
    )
    return NO_REPLY


async def _open_from_button(ctx: Context, action: Action) -> Reply:
    """`expert_open`: the profile form, from a welcome or a nudge."""
    return await open_form(ctx, Command(origin=action.origin, actor=action.actor, name="expert"))


async def matching_requests(
    ctx: Context, topics: Sequence[str], limit: int = OFFER_LIMIT
) -> list[ContentRequest]:
    """Open and unmet requests of colleagues that share a word with these topics, newest first."""
    wanted = {t for topic in topics for t in terms(topic)}
    if not wanted:
        return []
    query = (
        select(ContentRequest)
        .where(
            ContentRequest.workspace_id == ctx.workspace_id,
            col(ContentRequest.status).in_([Status.OPEN, Status.DECLINED]),
            ContentRequest.requester_id != ctx.member_id,
        )
        .order_by(col(ContentRequest.id).desc())
        .limit(OFFER_WINDOW)
    )
    found: list[ContentRequest] = []
    for request in (await ctx.session.exec(query)).all():
        about = " ".join([request.topic, request.context or "", " ".join(request.tags)])
        if wanted & set(terms(about)):
            found.append(request)
            if len(found) >= limit:
                break
    return found


def offer_message(saved: str, requests: Sequence[ContentRequest]) -> Message:
    """The saved profile, and the requests waiting for someone who knows what it says."""
    blocks: list[Block] = [
        Section(text=saved),
        Section(
            text=f"{plural(len(requests), 'request')} "
            f"{'matches' if len(requests) == 1 else 'match'} what you know:"
        ),
    ]
    for request in requests:
        blocks.append(
            Section(
                text=labelled(request.topic, LABELS[Status(request.status)]),
                button=Button(
                    label="I'll take it",
                    action=actions.REQUEST_TAKE,
                    value=str(request.id),
                    style="primary",
                ),
            )
        )
    return Message(text=saved, blocks=tuple(blocks))


def validate_profile(
    values: Mapping[str, FormValue], *, today: date
) -> tuple[list[str], str, int, date | None]:
    """Check an expert form; raise FormInvalid with every problem at once."""
    errors: dict[str, str] = {}
    known = values.get("known_topics") or ()
    picked = list(known) if isinstance(known, tuple) else [known]
    topics = normalise_topics([*picked, *_TOPIC_SPLIT.split(joined(values.get("other_topics")))])
    topic_field = "other_topics"
    if len(topics) > MAX_TOPICS:
        errors[topic_field] = (
            f"Up to {MAX_TOPICS} topics, please ({len(topics)} given): "
            "keep the ones you'd answer on."
        )
    elif any(len(t) > TOPIC_MAX for t in topics):
        errors[topic_field] = f"Each topic is at most {TOPIC_MAX} characters."
    elif not topics:
        errors[topic_field] = "Add at least one topic, so the right requests find you."
    bio = joined(values.get("bio")).strip()
    if len(bio) > BIO_MAX:
        errors["bio"] = f"Keep the bio under {BIO_MAX} characters ({len(bio)} now)."
    capacity = DEFAULT_CAPACITY
    raw_capacity = joined(values.get("capacity")).strip()
    if raw_capacity:
        try:
            capacity = int(raw_capacity)
        except ValueError:
            errors["capacity"] = "Use a whole number."
        else:
            if not 0 <= capacity <= CAPACITY_MAX:
                errors["capacity"] = f"Choose between 0 and {CAPACITY_MAX}."
    snoozed_until: date | None = None
    raw_date = joined(values.get("snoozed_until")).strip()
    if raw_date:
        try:
            snoozed_until = date.fromisoformat(raw_date)
        except ValueError:
            errors["snoozed_until"] = "Use a date like 2026-12-31."
        else:
            if snoozed_until < today:
                errors["snoozed_until"] = (
                    "That date has passed — pick today or later, or leave it empty."
                )
    if errors:
        raise FormInvalid(errors)
    return topics, bio, capacity, snoozed_until


@dataclass
class ImportReport:
    """What an import did, with a line number for every row it did not take."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.problems)} rejected"
        )
        return "\n".join([head, *self.problems])


async def import_experts(
    session: AsyncSession,
    workspace: Workspace,
    rows: Iterable[tuple[int, Mapping[str, str | None]]],
    *,
    directory: Directory | None,
    now: datetime,
) -> ImportReport:
    """Load profiles from CSV rows (line number, row); valid rows are saved, others reported."""
    report = ImportReport()
    seen: dict[str, int] = {}
    today = now.date()
    for line, row in rows:
        email = (row.get("email") or "").strip().lower()
        if not _EMAIL.match(email):
            report.problems.append(
                f"line {line}: {email or 'empty email'!s} is not an email address"
            )
            continue
        if email in seen:
            report.problems.append(
                f"line {line}: {email} already appears on line {seen[email]}; skipped"
            )
            continue
        seen[email] = line
        try:
            topics, bio, capacity, _ = validate_profile(
                {
                    "other_topics": row.get("topics") or "",
                    "bio": row.get("bio") or "",
                    "capacity": row.get("capacity") or "",
                },
                today=today,
            )
        except FormInvalid as invalid:
            report.problems.append(f"line {line}: " + "; ".join(invalid.errors.values()))
            continue
        member = await _member_by_email(
            session, workspace, email, (row.get("name") or "").strip(), directory, now
        )
        if member is None:
            report.problems.append(f"line {line}: no chat user with the email {email}")
            continue
        profile = await profile_of(session, member)
        if profile is None:
            session.add(
                ExpertProfile(
                    workspace_id=workspace.id or 0,
                    member_id=member.id or 0,
                    topics=topics,
                    bio=bio,
                    capacity=capacity,
                    created_at=now,
                    updated_at=now,
                )
            )
            report.created += 1
        elif (profile.topics, profile.bio, profile.capacity) == (topics, bio, capacity):
            report.unchanged += 1
        else:
            profile.topics, profile.bio, profile.capacity, profile.updated_at = (
                topics,
                bio,
                capacity,
                now,
            )
            session.add(profile)
            report.updated += 1
        await session.flush()
    return report


def check_columns(header: Iterable[str] | None) -> str | None:
    """The problem with a CSV header, if any (every column of CSV_COLUMNS is required)."""
    present = {h.strip().lower() for h in header or ()}
    missing = [c for c in CSV_COLUMNS if c not in present]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        expected = ", ".join(CSV_COLUMNS)
        return f"line 1: missing column{plural} {', '.join(missing)} (expected {expected})"
    return None


async def _member_by_email(
    session: AsyncSession,
    workspace: Workspace,
    email: str,
    name: str,
    directory: Directory | None,
    now: datetime,
) -> Member | None:
    if directory is not None:
        actor = await directory.by_email(workspace.external_id, email)
        return (
            None
            if actor is None or actor.is_bot
            else await ensure_member(session, workspace, actor, now)
        )
    query = select(Member).where(Member.workspace_id == workspace.id, Member.email == email)
    return (await session.exec(query)).first()


def register(router: Router) -> None:
    router.command(
        "expert",
        usage="expert",
        summary="create or edit my expert profile: topics, bio, capacity, snooze",
    )(open_form)
    router.form(FORM_ID)(submit)
    router.action(actions.EXPERT_OPEN)(_open_from_button)
