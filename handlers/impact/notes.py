"""Personal notes: on digest day, each person hears what their part of the loop did.

Experts whose posts were shared hear the shares, clicks and wins, and who shared; requesters
hear what their requests became; sharers see the clicks their links brought. One note per
person and week (the outbox key says so), and only to people with something to hear who
have not turned the notes off (`notes_toggle`, or the workspace's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Context, Scope, dm
from handlers.core.errors import NotFound
from handlers.core.interactions import Action, Reply
from handlers.core.lifecycle import LABELS, Status
from handlers.core.markup import Markup, md, mention
from handlers.core.messages import Block, Button, Buttons, ContextLine, Message, Section
from handlers.core.quiet_hours import zone
from handlers.core.wording import plural
from handlers.core.workspace_settings import WorkspaceSettings, load
from handlers.impact.linkedin_posts import confirmed
from handlers.impact.people import PersonFigures, RequestOutcome, people, request_outcomes
from handlers.impact.query import Period
from storage.models import Member, Post

if TYPE_CHECKING:
    from handlers.core.router import Router

SHOWN_REQUESTS = 5
SHOWN_SHARERS = 5


def wants_notes(member: Member, settings: WorkspaceSettings) -> bool:
    """The person's own choice, else the workspace's default."""
    if member.personal_notes is None:
        return settings.personal_notes_default
    return member.personal_notes


def toggle_button(on: bool) -> Button:
    """Turn weekly notes off (when on) or on (when off)."""
    if on:
        return Button(label="Turn off weekly notes", action=actions.NOTES_TOGGLE, value="off")
    return Button(label="Turn on weekly notes", action=actions.NOTES_TOGGLE, value="on")


def _names(users: tuple[str, ...]) -> Markup:
    shown = [mention(u) for u in users[:SHOWN_SHARERS]]
    if len(users) > SHOWN_SHARERS:
        shown.append(Markup(f"{len(users) - SHOWN_SHARERS} more"))
    return shown[0] if len(shown) == 1 else Markup(", ").join(shown[:-1]) + " and " + shown[-1]


def _outcome(o: RequestOutcome) -> Markup:
    status = Status(o.status)
    if status == Status.PUBLISHED and o.post_title:
        travelled = (
            f": {plural(o.shares, 'share')}, {plural(o.clicks, 'click')}"
            + (f", {plural(o.wins, 'win')}" if o.wins else "")
            + " this week"
        )
        if o.post_title.strip().casefold() == o.topic.strip().casefold():
            return md("• *{}* was published{}", o.topic, travelled)
        return md("• *{}* became *{}*{}", o.topic, o.post_title, travelled)
    by = (
        md(" by {}", mention(o.assignee))
        if o.assignee
        and status
        in (
            Status.CLAIMED,
            Status.IN_REVIEW,
            Status.CHANGES_REQUESTED,
        )
        else Markup()
    )
    return md("• *{}* — {}{}", o.topic, LABELS[status], by)


def note(
    person: PersonFigures | None,
    outcomes: list[RequestOutcome],
    period_label: str,
    *,
    on_linkedin: int = 0,
    my_posts_on_linkedin: int = 0,
) -> Message | None:
    """One person's note, or None when they have nothing to hear this week.

    `on_linkedin`: the person's posts LinkedIn confirmed; `my_posts_on_linkedin`: confirmed
    LinkedIn posts of the posts they wrote, by anyone.
    """
    parts: list[Markup] = []
    if person is not None and (person.post_shares or person.post_clicks or person.post_wins):
        line = md(
            "*Your posts* were shared {} and brought {}",
            plural(person.post_shares, "time"),
            plural(person.post_clicks, "click"),
        )
        if person.post_wins:
            line += f"; {plural(person.post_wins, 'win')} credited them"
        if person.sharers:
            line += md(". Shared by {}", _names(person.sharers))
        parts.append(line + ".")
    if outcomes:
        lines = [_outcome(o) for o in outcomes[:SHOWN_REQUESTS]]
        if len(outcomes) > SHOWN_REQUESTS:
            lines.append(Markup(f"• and {len(outcomes) - SHOWN_REQUESTS} more"))
        parts.append(md("*Your requests*\n{}", Markup("\n").join(lines)))
    if person is not None and (person.shares or person.clicks):
        parts.append(
            md(
                "*Your shares:* {} this week; your links brought {}.",
                plural(person.shares, "share"),
                plural(person.clicks, "click"),
            )
        )
    if my_posts_on_linkedin:
        parts.append(
            md(
                "*Your posts on LinkedIn:* published {} from Flywheel, confirmed by LinkedIn.",
                plural(my_posts_on_linkedin, "time"),
            )
        )
    if on_linkedin:
        parts.append(
            md(
                "*You on LinkedIn:* {} published from Flywheel, confirmed by LinkedIn.",
                plural(on_linkedin, "post"),
            )
        )
    if not parts:
        return None
    blocks: list[Block] = [Section(text=f"Your week in Flywheel, {period_label}")]
    blocks += [Section(text=part) for part in parts]
    blocks += [
        ContextLine(text="Every share and request keeps the loop turning — thank you."),
        Buttons(buttons=(toggle_button(True),)),
    ]
    return Message(text=f"Your week in Flywheel, {period_label}", blocks=tuple(blocks))


async def send_all(scope: Scope, settings: WorkspaceSettings, period: Period, week: str) -> int:
    """Queue the week's notes; the number queued. Keyed per person and week: sent once."""
    figures = await people(scope.session, scope.workspace_id, period)
    outcomes: dict[int, list[RequestOutcome]] = {}
    for outcome in await request_outcomes(scope.session, scope.workspace_id, period):
        outcomes.setdefault(outcome.requester_id, []).append(outcome)
    posted = await confirmed(scope.session, scope.workspace_id, period)
    by_author: dict[int, int] = {}
    if posted.by_post:
        written = await scope.session.exec(
            select(Post.id, Post.author_id).where(col(Post.id).in_(sorted(posted.by_post)))
        )
        for post_id, author_id in written.all():
            by_author[author_id] = by_author.get(author_id, 0) + posted.by_post[post_id or 0]
    ids = set(figures) | set(outcomes) | set(posted.by_member) | set(by_author)
    if not ids:
        return 0
    members = (
        await scope.session.exec(
            select(Member).where(
                Member.workspace_id == scope.workspace_id, col(Member.id).in_(sorted(ids))
            )
        )
    ).all()
    local = period.start.astimezone(zone(settings.timezone))
    label = f"week of {local.day} {local:%B}"
    queued = 0
    for member in members:
        if member.is_bot or not wants_notes(member, settings):
            continue
        assert member.id is not None
        message = note(
            figures.get(member.id),
            outcomes.get(member.id, []),
            label,
            on_linkedin=posted.by_member[member.id],
            my_posts_on_linkedin=by_author.get(member.id, 0),
        )
        if message is None:
            continue
        await scope.send(
            dm(member.user_id), message, key=f"note:{week}:{member.id}", unprompted=True
        )
        queued += 1
    return queued


async def toggle(ctx: Context, action: Action) -> Reply:
    """`notes_toggle` (value `on` or `off`): my weekly personal notes."""
    if action.value not in ("on", "off"):
        raise NotFound("That button isn't something I know any more. Try `stats`.")
    on = action.value == "on"
    ctx.member.personal_notes = on
    ctx.session.add(ctx.member)
    if on:
        return Reply(
            message=Message(
                text="Weekly notes are on: on digest day you'll hear what your part did.",
                blocks=(
                    Section(
                        text=Markup(
                            "Weekly notes are *on*: on digest day you'll hear what your "
                            "shares, posts and requests did."
                        )
                    ),
                    Buttons(buttons=(toggle_button(True),)),
                ),
            )
        )
    return Reply(
        message=Message(
            text="Weekly notes are off. Turn them back on any time from `stats`.",
            blocks=(
                Section(
                    text=Markup("Weekly notes are *off*. Turn them back on any time from `stats`.")
                ),
                Buttons(buttons=(toggle_button(False),)),
            ),
        )
    )


def notes_on(ctx: Context) -> bool:
    return wants_notes(ctx.member, load(ctx.workspace))


def register(router: Router) -> None:
    router.action(actions.NOTES_TOGGLE)(toggle)
