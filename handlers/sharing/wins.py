"""Wins: something good happened in a deal, and a post helped — in the seller's words.

`win` (or `win_log` on a shared post) opens `win_form`. A logged win shows in `stats` and
the weekly digest, and its author hears that their post made a difference.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlmodel import col, select

from handlers.core import actions, lookup
from handlers.core.context import Context, dm
from handlers.core.interactions import Action, Command, Reply, Submission
from handlers.core.markup import md, quoted
from handlers.core.members import mention
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    FormField,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
)
from handlers.core.wording import first
from storage.models import Member, Post, Share, ShareSuggestion, Win

if TYPE_CHECKING:
    from handlers.core.router import Router

FORM_ID = "win_form"
KINDS = {
    "meeting": "Meeting booked",
    "opportunity": "Opportunity opened",
    "deal": "Deal won",
    "other": "Something else",
}
DESCRIPTION_MAX = 1000
ACCOUNT_MAX = 200
# Whole units; large enough for any deal, small enough for a 32-bit column.
VALUE_MAX = 2_000_000_000
# Slack shows at most 100 options in a select; the most recent posts are the likely ones.
POST_CHOICES = 50
NO_POST = "none"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_GROUPING = re.compile(r"[\s,_'’]")


async def my_posts(ctx: Context, include: int | None = None) -> list[Post]:
    """Posts I was sent or shared, newest first (and `include`, when it is this workspace's)."""
    suggested = select(ShareSuggestion.post_id).where(
        ShareSuggestion.workspace_id == ctx.workspace_id,
        ShareSuggestion.member_id == ctx.member_id,
    )
    shared = select(Share.post_id).where(
        Share.workspace_id == ctx.workspace_id, Share.member_id == ctx.member_id
    )
    wanted = col(Post.id).in_(suggested) | col(Post.id).in_(shared)
    if include is not None:
        wanted = wanted | (col(Post.id) == include)
    query = (
        select(Post)
        .where(Post.workspace_id == ctx.workspace_id, wanted)
        .order_by(col(Post.published_at).desc(), col(Post.id).desc())
        .limit(POST_CHOICES)
    )
    return list((await ctx.session.exec(query)).all())


def win_form(posts: list[Post], *, post_id: int | None = None) -> Form:
    """What happened, with which account, thanks to which post, and what it's worth."""
    fields: list[FormField] = [
        SelectField(
            name="kind",
            label="What happened?",
            options=tuple(Option(value=k, label=label) for k, label in KINDS.items()),
            initial=("meeting",),
        ),
        TextField(
            name="description",
            label="Tell the story",
            multiline=True,
            max_length=DESCRIPTION_MAX,
            placeholder="The CTO read our failover post and asked for a follow-up call.",
            hint="In your words: it goes in the weekly digest.",
        ),
        TextField(
            name="account",
            label="Account",
            max_length=ACCOUNT_MAX,
            placeholder="Globex",
            optional=True,
        ),
    ]
    if posts:
        fields.append(
            SelectField(
                name="post",
                label="Which post helped?",
                options=(
                    *(Option(value=str(p.id), label=p.title[:75]) for p in posts),
                    Option(value=NO_POST, label="None of these"),
                ),
                initial=(str(post_id),) if post_id and any(p.id == post_id for p in posts) else (),
                optional=True,
            )
        )
    fields.append(
        TextField(
            name="value",
            label="Value (optional)",
            max_length=20,
            placeholder="25000",
            hint="Roughly what it's worth, in whole units of your currency.",
            optional=True,
        )
    )
    return Form(
        form_id=FORM_ID,
        title="Log a win",
        submit_label="Log it",
        fields=tuple(fields),
    )


async def open_from_command(ctx: Context, command: Command) -> Reply:
    """`win`: the win form (a button to open it where a command cannot)."""
    if not command.origin.can_open_forms:
        return Reply(
            message=Message(
                text="Log a win",
                blocks=(
                    Section(text="What happened? Log it and it shows in this week's digest."),
                    Buttons(
                        buttons=(
                            Button(label="Log a win", action=actions.WIN_LOG, style="primary"),
                        )
                    ),
                ),
            )
        )
    return Reply(form=win_form(await my_posts(ctx)))


async def open_from_post(ctx: Context, action: Action) -> Reply:
    """`win_log` on a post (or without one): the win form, with that post chosen."""
    post = await lookup.find(ctx, Post, action.value)
    post_id = post.id if post is not None else None
    return Reply(form=win_form(await my_posts(ctx, include=post_id), post_id=post_id))


def parse_value(raw: str) -> int | None:
    """A value like "25,000" or "1 200.50" in whole units; ValueError with what's wrong."""
    text = _GROUPING.sub("", raw.strip()).lstrip("$€£¥")
    if not text:
        return None
    if text.startswith("-"):
        raise ValueError("A value can't be negative — leave it empty if there is none.")
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"“{raw.strip()[:20]}” isn't a number — use digits, like 25000.")
    value = round(float(text))
    if value > VALUE_MAX:
        raise ValueError("That value is too large to be right — check the number.")
    return value


async def submit(ctx: Context, submission: Submission) -> Reply:
    """`win_form`: validate everything first; a bad field is shown inline and nothing is written."""
    values = submission.values
    errors: dict[str, str] = {}
    kind = first(values.get("kind")).strip()
    if kind not in KINDS:
        errors["kind"] = "Choose what happened."
    description = first(values.get("description")).strip()
    if not description:
        errors["description"] = "Tell us what happened — one sentence is enough."
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = f"Keep it under {DESCRIPTION_MAX} characters."
    account = " ".join(first(values.get("account")).strip().split())
    if len(account) > ACCOUNT_MAX:
        errors["account"] = f"Keep the account name under {ACCOUNT_MAX} characters."
    value: int | None = None
    try:
        value = parse_value(first(values.get("value")).strip())
    except ValueError as error:
        errors["value"] = str(error)
    post: Post | None = None
    raw_post = first(values.get("post")).strip()
    if raw_post and raw_post != NO_POST:
        post = await lookup.find(ctx, Post, raw_post)
        if post is None:
            errors["post"] = "That post isn't one of this workspace's — choose one from the list."
            post = None
    if errors:
        return Reply.invalid(errors)
    win = Win(
        workspace_id=ctx.workspace_id,
        member_id=ctx.member_id,
        post_id=post.id if post else None,
        kind=kind,
        account=account,
        description=description,
        value=value,
        at=ctx.now,
    )
    ctx.session.add(win)
    await ctx.session.flush()
    if post is not None and post.author_id != ctx.member_id:
        author = await ctx.session.get(Member, post.author_id)
        if author is not None:
            await ctx.send(
                dm(author.user_id),
                _thanks(win, post, ctx.member),
                key=f"win:{win.id}",
                unprompted=True,
            )
    return Reply.say(
        f"Win logged: {KINDS[kind].lower()}"
        + (f" with {account}" if account else "")
        + ". Thank you — it'll be in this week's digest."
    )


def _thanks(win: Win, post: Post, seller: Member) -> Message:
    what = KINDS[win.kind] + (f" with {win.account}" if win.account else "")
    return Message(
        text=f"Your post helped: {what}",
        blocks=(
            Section(text=md("🏆 *Your post helped:* {}\n“{}”", what, post.title)),
            Section(text=quoted(win.description)),
            ContextLine(text=md("Logged by {}.", mention(seller))),
        ),
    )


def register(router: Router) -> None:
    router.command("win", usage="win", summary="log a win that content helped with")(
        open_from_command
    )
    router.action(actions.WIN_LOG)(open_from_post)
    router.form(FORM_ID)(submit)
