"""One-click sharing: the personal share message, share intents, and sharing preferences.

A share message carries three URL buttons — LinkedIn, X, email — each opening the
network's composer with a suggested caption and the person's own tracked link for that
post and network. Pressing one is a *share intent*: the platform reports the press (Slack
sends the action even for URL buttons), so shares and the clicks they bring are counted
apart and attributed to the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import actions, lookup, markup
from handlers.core.context import Context, Scope
from handlers.core.errors import DomainError, NotFound
from handlers.core.interactions import NO_REPLY, Action, Reply, Submission
from handlers.core.markup import Markup, md, quoted
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    Form,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
)
from handlers.core.wording import first
from handlers.core.workspace_settings import load
from handlers.home import view
from handlers.linkedin import connection as linkedin
from handlers.sharing import captions, composer, tracked_links
from storage.models import Member, Post, Share, ShareSuggestion, TrackedLink, Workspace

if TYPE_CHECKING:
    from handlers.core.router import Router

SHARE_NETWORKS = ("linkedin", "x", "email")
SHARE_ACTIONS = {actions.SHARE[network]: network for network in SHARE_NETWORKS}
# Presses of one button within this window are one share: people double-click.
SHARE_REPEAT = timedelta(minutes=30)

PREFS_FORM = "share_prefs_form"
INTERESTS_MAX = 10
INTEREST_CHARS = 40
TEAM_CHARS = 100
CAPTION_SHOWN = 1500

REASONS = {
    "requester": "You asked for this one.",
    "voter": "You +1'd the request behind it.",
    "author": "You wrote it — your network will want to see it.",
    "interest": "It matches your interests.",
    "team": "It's for your team.",
    "channel": "Your personal links for this post.",
    "everyone": "Shared with everyone who opted in.",
    "find": "",
}
NO_LONGER_SHARED = "This post is no longer shared — `find` has what colleagues share now."


def retired(post: Post, now: datetime) -> bool:
    """Retired, or past its end date: no longer suggested, found or shared."""
    return post.retired_at is not None or (post.ends_at is not None and post.ends_at <= now)


def post_address(post: Post, public_base_url: str) -> str:
    """Where a reader finds the post itself: its URL, or its public page."""
    if post.canonical_url and tracked_links.web_address(post.canonical_url):
        return post.canonical_url
    return tracked_links.page_url(public_base_url, post)


def headline(post: Post, public_base_url: str) -> Markup:
    """The post's title, linked to where it can be read, over its summary."""
    title = md("*{}*", markup.link(post_address(post, public_base_url), post.title))
    return md("{}\n{}", title, post.summary) if post.summary.strip() else title


def intent_url(public_base_url: str, link: TrackedLink) -> str:
    """The share button's address: `/s/{intent_code}` records the share, opens the composer."""
    return f"{public_base_url.rstrip('/')}/s/{link.intent_code}"


def composer_url(post: Post, network: str, caption: str, tracked: str, mode: str) -> str:
    """The network's composer, filled with the caption and the person's tracked link."""
    if network == "linkedin":
        return composer.linkedin_url(caption, tracked, mode=mode)
    if network == "x":
        return composer.x_url(caption, tracked)
    return composer.mailto_url(post.title, caption, tracked)


def share_buttons(
    links: Mapping[str, TrackedLink], public_base_url: str, linkedin_button: Button | None = None
) -> tuple[Button, ...]:
    """LinkedIn, X and email buttons, each with the person's own link for that network.

    A button leads through `/s/…`, which records the share and opens the composer, so a
    press counts on every platform; where the platform also reports it (Slack), the two
    reports of one press are one share. `linkedin_button` (where LinkedIn posting is set
    up: post from chat, or connect first) goes beside the composer's.
    """
    labels = {"linkedin": "Share on LinkedIn", "x": "Post on X", "email": "Email it"}
    composers = tuple(
        Button(
            label=labels[network],
            action=actions.SHARE[network],
            value=links[network].intent_code,
            url=intent_url(public_base_url, links[network]),
            style="primary" if network == "linkedin" else None,
        )
        for network in SHARE_NETWORKS
    )
    if linkedin_button is None:
        return composers
    return (composers[0], linkedin_button, *composers[1:])


def caption_for(post: Post, member_id: int) -> str:
    """The caption a person gets when nobody planned one for them: theirs, every time."""
    choices = captions.pool(post.captions, post.title)
    return choices[member_id % len(choices)]


async def caption_of(session: AsyncSession, post: Post, member_id: int) -> str:
    """The one caption a person's share message shows and their share buttons carry: the
    one planned for them when the post reached them, else theirs by `caption_for`."""
    planned = (
        await session.exec(
            select(ShareSuggestion.caption).where(
                ShareSuggestion.post_id == post.id, ShareSuggestion.member_id == member_id
            )
        )
    ).first()
    return planned or caption_for(post, member_id)


def share_message(
    post: Post,
    *,
    caption: str,
    links: Mapping[str, TrackedLink],
    reason: str,
    public_base_url: str,
    linkedin_button: Button | None = None,
) -> Message:
    """The message that asks one person to share one post, in their own words.

    `linkedin_button` (where LinkedIn posting is set up) posts from chat, or connects first.
    """
    blocks: list[Block] = [
        Section(text=headline(post, public_base_url)),
        Section(
            text=md(
                "*Suggested caption* — make it yours:\n{}",
                quoted(composer.shorten(caption, CAPTION_SHOWN)),
            )
        ),
        Buttons(
            buttons=(
                *share_buttons(links, public_base_url, linkedin_button),
                Button(label="Log a win", action=actions.WIN_LOG, value=str(post.id)),
            )
        ),
        ContextLine(
            text=" ".join(
                part
                for part in (
                    REASONS.get(reason, ""),
                    "The links are yours: clicks on them count for you in the weekly digest.",
                )
                if part
            )
        ),
    ]
    return Message(text=f"Ready to share: {post.title}", blocks=tuple(blocks))


async def personal_share(
    scope: Scope, post: Post, member: Member, *, caption: str, reason: str
) -> Message:
    """A share message for one person, creating their tracked links on first use."""
    found = await tracked_links.links_for(scope, post, [member], SHARE_NETWORKS)
    links = {network: found[(member.id or 0, network)] for network in SHARE_NETWORKS}
    buttons = await linkedin_buttons(scope, post, [member.id or 0])
    return share_message(
        post,
        caption=caption,
        links=links,
        reason=reason,
        public_base_url=scope.config.public_base_url,
        linkedin_button=buttons.get(member.id or 0),
    )


async def linkedin_buttons(scope: Scope, post: Post, member_ids: list[int]) -> dict[int, Button]:
    """Each member's LinkedIn button for `post`; none where LinkedIn posting isn't set up."""
    if not scope.config.linkedin:
        return {}
    connected = await linkedin.connected_members(scope, member_ids)
    return {m: linkedin.post_button(post.id, m in connected) for m in member_ids}


# -- share intents ------------------------------------------------------------------------


async def record_share(ctx: Context, action: Action) -> Reply:
    """`share_linkedin`, `share_x`, `share_email`: a share button was pressed."""
    network = SHARE_ACTIONS[action.action]
    link = await _intent_link(ctx.session, action.value)
    if link is None or link.workspace_id != ctx.workspace_id or link.network != network:
        raise NotFound("That share button is out of date — ask for the post again with `find`.")
    if link.member_id != ctx.member_id:
        raise DomainError(
            "These share links belong to a colleague, so the clicks would count for them — "
            "press “Get my share links” on the post for your own."
        )
    post = await ctx.session.get(Post, link.post_id)
    if post is None or retired(post, ctx.now):
        raise DomainError(NO_LONGER_SHARED)
    await _record(ctx.session, link, ctx.now)
    # The button opened the composer in the browser: nothing to say in chat.
    return NO_REPLY


async def follow_intent(
    session: AsyncSession, code: str, *, now: datetime, public_base_url: str, preview: bool
) -> str | None:
    """`/s/{code}`: record the share (unless a preview fetched it) and say where to go next:
    the network's composer with the person's caption and tracked link; None if unknown."""
    link = await _intent_link(session, code)
    if link is None:
        return None
    post = await session.get(Post, link.post_id)
    workspace = await session.get(Workspace, link.workspace_id)
    if post is None or workspace is None or post.workspace_id != link.workspace_id:
        return None
    if retired(post, now):
        # No share is recorded; the reader lands on the post itself, as its links do.
        return post_address(post, public_base_url)
    caption = await caption_of(session, post, link.member_id)
    if not preview:
        await _record(session, link, now)
    tracked = tracked_links.tracked_url(public_base_url, link.code)
    return composer_url(post, link.network, caption, tracked, load(workspace).linkedin_share)


async def _intent_link(session: AsyncSession, code: str) -> TrackedLink | None:
    if not tracked_links.valid_code(code):
        return None
    query = select(TrackedLink).where(TrackedLink.intent_code == code)
    return (await session.exec(query)).first()


async def _record(session: AsyncSession, link: TrackedLink, now: datetime) -> None:
    """One share for this link, unless one was recorded within SHARE_REPEAT."""
    recent = (
        await session.exec(
            select(Share.id).where(Share.link_id == link.id, col(Share.at) > now - SHARE_REPEAT)
        )
    ).first()
    if recent is None:
        session.add(
            Share(
                workspace_id=link.workspace_id,
                post_id=link.post_id,
                member_id=link.member_id,
                network=link.network,
                link_id=link.id or 0,
                at=now,
            )
        )


async def share_post(ctx: Context, action: Action) -> Reply:
    """`share_post` (on a share-channel announcement): my own share buttons for the post."""
    post = await get_post(ctx, action.value)
    if retired(post, ctx.now):
        raise DomainError(NO_LONGER_SHARED)
    caption = await caption_of(ctx.session, post, ctx.member_id)
    message = await personal_share(ctx, post, ctx.member, caption=caption, reason="channel")
    return Reply(message=message)


async def get_post(ctx: Scope, raw_id: str) -> Post:
    """A post of this workspace by id, or NotFound."""
    return await lookup.get(ctx, Post, raw_id, "That post no longer exists.")


# -- preferences --------------------------------------------------------------------------


def preferences_form(member: Member) -> Form:
    """Opt in or out of share suggestions, and say what they should be about."""
    choice = {True: "in", False: "out", None: "ask"}[member.share_opt_in]
    return Form(
        form_id=PREFS_FORM,
        title="Sharing preferences",
        submit_label="Save",
        intro=(
            Section(
                text="Approved posts reach colleagues whose interests or team match their "
                "tags, with one-click share buttons and a caption to make your own."
            ),
        ),
        fields=(
            SelectField(
                name="opt_in",
                label="Send me posts to share",
                options=(
                    Option(value="in", label="Yes — posts that match my interests or team"),
                    Option(value="ask", label="Only posts I asked for or +1'd"),
                    Option(value="out", label="Never, not even those"),
                ),
                initial=(choice,),
            ),
            TextField(
                name="interests",
                label="Interests",
                initial=", ".join(member.interests),
                placeholder="kubernetes, security, data platform",
                hint=f"Up to {INTERESTS_MAX}, separated by commas.",
                max_length=INTERESTS_MAX * (INTEREST_CHARS + 2),
                optional=True,
            ),
            TextField(
                name="team",
                label="Team",
                initial=member.team or "",
                placeholder="platform",
                max_length=TEAM_CHARS,
                optional=True,
            ),
        ),
    )


async def open_preferences(ctx: Context, action: Action) -> Reply:
    """`share_prefs`: the preferences form."""
    return Reply(form=preferences_form(ctx.member))


def parse_interests(raw: str) -> list[str]:
    """Comma-separated interests, cleaned; ValueError naming the problem."""
    interests: list[str] = []
    for part in raw.replace("\n", ",").split(","):
        item = " ".join(part.split()).lower()
        if not item:
            continue
        if len(item) > INTEREST_CHARS:
            raise ValueError(f"“{item[:20]}…” is longer than {INTEREST_CHARS} characters.")
        if item not in interests:
            interests.append(item)
    if len(interests) > INTERESTS_MAX:
        raise ValueError(f"Keep it to {INTERESTS_MAX} interests (you gave {len(interests)}).")
    return interests


async def save_preferences(ctx: Context, submission: Submission) -> Reply:
    """`share_prefs_form`: store the choices; bad input is shown inline, nothing saved."""
    values = submission.values
    choice = first(values.get("opt_in")).strip()
    errors: dict[str, str] = {}
    if choice not in ("in", "ask", "out"):
        errors["opt_in"] = "Choose one of the options."
    try:
        interests = parse_interests(first(values.get("interests")).strip())
    except ValueError as error:
        errors["interests"] = str(error)
    team = " ".join(first(values.get("team")).strip().split()).lower()
    if len(team) > TEAM_CHARS:
        errors["team"] = f"Keep the team name within {TEAM_CHARS} characters."
    if choice == "in" and not errors and not interests and not team:
        errors["interests"] = "Add an interest or your team, so posts can be matched to you."
    if errors:
        return Reply.invalid(errors)
    member = ctx.member
    member.share_opt_in = {"in": True, "out": False, "ask": None}[choice]
    member.interests, member.team, member.updated_at = interests, team or None, ctx.now
    ctx.session.add(member)
    await view.refresh(ctx)
    summary = {
        "in": "You'll get approved posts that match "
        + (", ".join(interests + ([f"team {team}"] if team else [])))
        + ".",
        "ask": "You'll get only the posts you asked for or +1'd.",
        "out": "You won't get posts to share. Change it any time with `stats`.",
    }[choice]
    return Reply.say(f"Saved. {summary}")


def register(router: Router) -> None:
    for name in SHARE_ACTIONS:
        router.action(name)(record_share)
    router.action(actions.SHARE_POST)(share_post)
    router.action(actions.SHARE_PREFS)(open_preferences)
    router.form(PREFS_FORM)(save_preferences)
