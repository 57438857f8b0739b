"""Connecting a member's LinkedIn: the signed link in chat, the OAuth `state`, the sealed token.

The browser leg goes `Connect LinkedIn` (a button in chat) → a fresh signed link, bound to
the member and the workspace, valid for `LINK_TTL` → `GET /linkedin/connect`, which makes a
`state` (signed, bound to the member, the workspace and the browser by a cookie, valid for
`STATE_TTL`) → LinkedIn's consent page → `GET /linkedin/callback`. A state is used once:
its nonce is recorded before the code is exchanged. Nothing about the member is stored
unless every check passed and LinkedIn handed over a token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select, update

from handlers.core import actions
from handlers.core.context import Config, Context, Scope, dm
from handlers.core.errors import DomainError
from handlers.core.interactions import NO_REPLY, Action, Reply
from handlers.core.markup import md
from handlers.core.messages import Block, Button, Buttons, ContextLine, Header, Message, Section
from handlers.core.quiet_hours import next_allowed, zone
from handlers.core.sealing import Keyring, Unreadable
from handlers.core.workspace_settings import load
from handlers.linkedin.api import AccessToken, Grant, Person
from handlers.linkedin.status import LinkedInPostStatus
from storage.db import SessionFactory, transaction
from storage.models import LinkedInAccount, LinkedInPost, LinkedInState, Member, Workspace
from storage.upsert import insert_ignore

if TYPE_CHECKING:
    from handlers.core.router import Router

LINK_TTL = timedelta(minutes=30)
STATE_TTL = timedelta(minutes=10)
TOKEN_PURPOSE = "linkedin-token"
LINK_PURPOSE = "linkedin-connect"
STATE_PURPOSE = "linkedin-state"
DISCONNECTED = (
    "Your LinkedIn is disconnected: nothing more will be posted, and Flywheel revokes its "
    "access at LinkedIn and forgets the token."
)
NOT_SET_UP = "LinkedIn posting isn't set up in this workspace — your admin can turn it on."


@dataclass(frozen=True, slots=True)
class Who:
    """The member a link or a state was made for."""

    workspace_id: int
    member_id: int


class Refused(Exception):
    """A browser leg refused: `reason` names the page to show; nothing was stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def keyring(config: Config) -> Keyring:
    if config.keyring is None or not config.linkedin:
        raise DomainError(NOT_SET_UP)
    return config.keyring


def redirect_uri(config: Config) -> str:
    """The URL to register with the LinkedIn app, and the one LinkedIn sends people back to."""
    return f"{config.public_base_url.rstrip('/')}/linkedin/callback"


def connect_url(config: Config, who: Who, now: datetime) -> str:
    """A link to start connecting, for this member only, valid for LINK_TTL."""
    claims = {"w": who.workspace_id, "m": who.member_id, "e": int((now + LINK_TTL).timestamp())}
    token = keyring(config).sign(claims, purpose=LINK_PURPOSE)
    return f"{config.public_base_url.rstrip('/')}/linkedin/connect?t={token}"


def _claims(config: Config, token: str, purpose: str, now: datetime) -> dict[str, Any]:
    try:
        claims = keyring(config).verify(token, purpose=purpose)
    except (Unreadable, DomainError):
        raise Refused("invalid") from None
    if not all(isinstance(claims.get(k), int) for k in ("w", "m", "e")):
        raise Refused("invalid")
    if claims["e"] < now.timestamp():
        raise Refused("expired")
    return claims


def read_connect_link(config: Config, token: str, now: datetime) -> Who:
    """Who a `/linkedin/connect` link was made for; Refused when forged or expired."""
    claims = _claims(config, token, LINK_PURPOSE, now)
    return Who(claims["w"], claims["m"])


def new_state(config: Config, who: Who, now: datetime) -> tuple[str, str]:
    """A fresh `state` for LinkedIn, and its nonce (which the browser keeps in a cookie)."""
    nonce = secrets.token_urlsafe(24)
    claims = {
        "w": who.workspace_id,
        "m": who.member_id,
        "n": nonce,
        "e": int((now + STATE_TTL).timestamp()),
    }
    return keyring(config).sign(claims, purpose=STATE_PURPOSE), nonce


@dataclass(frozen=True, slots=True)
class State:
    """A callback's `state`, checked: who it was made for, and its one-time nonce."""

    who: Who
    nonce: str


def read_state(config: Config, state: str, now: datetime) -> State:
    """Who a callback's `state` was made for; Refused when missing, forged or expired."""
    if not state:
        raise Refused("missing")
    claims = _claims(config, state, STATE_PURPOSE, now)
    nonce = claims.get("n")
    if not isinstance(nonce, str) or not nonce:
        raise Refused("invalid")
    return State(Who(claims["w"], claims["m"]), nonce)


def same_browser(state: State, browser_nonce: str | None) -> None:
    """Refused unless the browser finishing the flow is the one that started it."""
    if browser_nonce is None or not secrets.compare_digest(state.nonce, browser_nonce):
        # Started by someone else, or in another browser: finishing it here would connect
        # one person's LinkedIn to another person's chat account.
        raise Refused("foreign")


async def refuse_used(sessions: SessionFactory, state: State) -> None:
    """Refused("replayed") when this state was used before, whoever brings it back."""
    async with sessions() as session:
        used = (
            await session.exec(select(LinkedInState.id).where(LinkedInState.nonce == state.nonce))
        ).first()
    if used is not None:
        raise Refused("replayed")


async def use_state(sessions: SessionFactory, state: State, now: datetime) -> None:
    """Record the state as used, before its code is exchanged; Refused if it was already."""
    who = state.who
    async with transaction(sessions) as session:
        member = await session.get(Member, who.member_id)
        if member is None or member.workspace_id != who.workspace_id:
            raise Refused("invalid")
        table: Any = LinkedInState.__table__  # type: ignore[attr-defined]
        fresh = await insert_ignore(
            session,
            table,
            {
                "nonce": state.nonce,
                "workspace_id": who.workspace_id,
                "member_id": who.member_id,
                "used_at": now,
            },
            ("nonce",),
        )
    if not fresh:
        raise Refused("replayed")


async def revocation_pending(
    sessions: SessionFactory, config: Config, who: Who
) -> AccessToken | None:
    """The token of this member's disconnected LinkedIn not yet revoked (the worker's job),
    so that connecting again revokes it first rather than forget it unrevoked."""
    async with sessions() as session:
        account = (
            await session.exec(
                select(LinkedInAccount).where(
                    LinkedInAccount.member_id == who.member_id,
                    col(LinkedInAccount.disconnected_at).is_not(None),
                )
            )
        ).first()
        if account is None:
            return None
        try:
            return unseal(keyring(config), account)
        except Unreadable:
            return None


async def save_account(
    sessions: SessionFactory,
    clock_now: datetime,
    config: Config,
    who: Who,
    grant: Grant,
    person: Person,
    on_commit: Callable[[], None] | None = None,
) -> str:
    """Store the sealed token, wake posts that waited for it, tell the member in chat.

    Returns the LinkedIn name, for the page the browser lands on.
    """
    ring = keyring(config)
    async with transaction(sessions) as session:
        workspace = await session.get(Workspace, who.workspace_id)
        member = await session.get(Member, who.member_id)
        if workspace is None or member is None or member.workspace_id != who.workspace_id:
            raise Refused("invalid")
        scope = Scope(session, _Fixed(clock_now), config, workspace)
        account = (
            await session.exec(
                select(LinkedInAccount).where(LinkedInAccount.member_id == who.member_id)
            )
        ).first()
        if account is None:
            account = LinkedInAccount(
                workspace_id=who.workspace_id,
                member_id=who.member_id,
                person_id=person.sub,
                token="",
                expires_at=clock_now,
                connected_at=clock_now,
                updated_at=clock_now,
            )
        account.person_id = person.sub[:64]
        account.name = person.name[:200]
        account.token = seal(ring, grant.token, who.member_id)
        account.scope = grant.scope[:200]
        account.expires_at = clock_now + timedelta(seconds=max(0, grant.expires_in))
        account.reminded_at = account.expiry_told_at = account.disconnected_at = None
        account.connected_at = account.updated_at = clock_now
        session.add(account)
        settings = load(workspace)
        due = next_allowed(
            clock_now, zone(member.tz or settings.timezone), settings.working_hours()
        )
        waiting = await session.exec(
            update(LinkedInPost)
            .where(
                col(LinkedInPost.member_id) == who.member_id,
                col(LinkedInPost.status) == LinkedInPostStatus.WAITING,
            )
            .values(status=LinkedInPostStatus.SCHEDULED, due_at=due, updated_at=clock_now)
        )
        resumed = waiting.rowcount or 0
        detail = (
            f"{resumed} post{'s' if resumed != 1 else ''} that waited for it will go out "
            "in your working hours."
            if resumed
            else "Approved posts now carry a “Post on LinkedIn” button."
        )
        await scope.send(
            dm(member.user_id),
            Message(
                text=md("✅ Your LinkedIn is connected as *{}*.", person.name or "you"),
                blocks=(
                    Section(
                        text=md("✅ Your LinkedIn is connected as *{}*.", person.name or "you")
                    ),
                    ContextLine(text=detail),
                    Buttons(
                        buttons=(
                            Button(
                                label="Disconnect LinkedIn",
                                action=actions.LINKEDIN_DISCONNECT,
                                style="danger",
                            ),
                        )
                    ),
                ),
            ),
            key=f"linkedin:connected:{who.member_id}:{int(clock_now.timestamp())}",
        )
    if on_commit is not None:
        on_commit()
    return person.name


class _Fixed:
    """A clock reading taken once: the callback's work happens at one moment."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


def seal(ring: Keyring, token: AccessToken, member_id: int) -> str:
    return ring.seal(token.reveal(), purpose=TOKEN_PURPOSE, bound_to=f"member:{member_id}")


def unseal(ring: Keyring, account: LinkedInAccount) -> AccessToken:
    """The account's token; sealed again under the current key if an earlier one sealed it."""
    opened = ring.open(account.token, purpose=TOKEN_PURPOSE, bound_to=f"member:{account.member_id}")
    token = AccessToken(opened.value)
    if opened.stale:
        account.token = seal(ring, token, account.member_id)
    return token


async def account_of(scope: Scope, member_id: int) -> LinkedInAccount | None:
    """The member's connected LinkedIn, or None (never connected, or disconnected)."""
    account = (
        await scope.session.exec(
            select(LinkedInAccount).where(
                LinkedInAccount.member_id == member_id,
                LinkedInAccount.workspace_id == scope.workspace_id,
            )
        )
    ).first()
    return None if account is None or account.disconnected_at is not None else account


async def connected_members(scope: Scope, member_ids: list[int]) -> set[int]:
    """Which of these members have a LinkedIn connected (expired or not)."""
    if not member_ids or not scope.config.linkedin:
        return set()
    rows = await scope.session.exec(
        select(LinkedInAccount.member_id).where(
            LinkedInAccount.workspace_id == scope.workspace_id,
            col(LinkedInAccount.member_id).in_(member_ids),
            col(LinkedInAccount.disconnected_at).is_(None),
        )
    )
    return set(rows.all())


def connect_button(label: str = "Connect LinkedIn") -> Button:
    return Button(label=label, action=actions.LINKEDIN_CONNECT)


def post_button(post_id: int | None, connected: bool) -> Button:
    """Beside the composer button: post from here, or connect LinkedIn first."""
    if not connected:
        return connect_button("Connect LinkedIn to post")
    return Button(label="Post on LinkedIn", action=actions.LINKEDIN_POST, value=str(post_id))


async def home_blocks(ctx: Context) -> list[Block]:
    """The member's LinkedIn in their home: connected (until when), and the button to change it."""
    if not ctx.config.linkedin:
        return []
    account = await account_of(ctx, ctx.member_id)
    if account is None:
        line = md("Not connected. Connect once to post approved posts as yourself in one click.")
        button = connect_button()
    elif account.expires_at <= ctx.now:
        line = md("Your connection as *{}* has expired: reconnect to keep posting.", account.name)
        button = connect_button("Reconnect LinkedIn")
    else:
        until = f"{account.expires_at:%-d %b %Y}"
        line = md("Connected as *{}* until {}.", account.name or "you", until)
        button = Button(label="Disconnect LinkedIn", action=actions.LINKEDIN_DISCONNECT)
    return [Header(text="LinkedIn"), Section(text=line, button=button)]


# -- chat ---------------------------------------------------------------------------------


def connect_message(url: str, *, again: bool = False) -> Message:
    """The member's own link to LinkedIn's consent page."""
    text = (
        "Reconnect your LinkedIn to keep posting from here."
        if again
        else "Connect your LinkedIn to post approved posts in one click, as yourself."
    )
    return Message(
        text=text,
        blocks=(
            Section(text=text),
            Buttons(
                buttons=(
                    Button(
                        label="Open LinkedIn",
                        action=actions.LINKEDIN_OPEN,
                        url=url,
                        style="primary",
                    ),
                )
            ),
            ContextLine(
                text="The link is yours alone and works for 30 minutes. Flywheel asks LinkedIn "
                "for your name and for permission to post; it never posts without you asking."
            ),
        ),
    )


async def connect(ctx: Context, action: Action) -> Reply:
    """`linkedin_connect`: a fresh link to LinkedIn's consent page, for the presser only."""
    url = connect_url(ctx.config, Who(ctx.workspace_id, ctx.member_id), ctx.now)
    account = await account_of(ctx, ctx.member_id)
    return Reply(message=connect_message(url, again=account is not None), private=True)


async def opened(ctx: Context, action: Action) -> Reply:
    """`linkedin_open`: the browser opened the link; nothing to say in chat."""
    return NO_REPLY


async def disconnect(ctx: Context, action: Action) -> Reply:
    """`linkedin_disconnect`: forget the token (the worker revokes it at LinkedIn) and cancel
    what was waiting to be posted."""
    keyring(ctx.config)
    account = await account_of(ctx, ctx.member_id)
    if account is None:
        return Reply.say("Your LinkedIn isn't connected — there's nothing to disconnect.")
    account.disconnected_at = account.updated_at = ctx.now
    ctx.session.add(account)
    cancelled = await ctx.session.exec(
        update(LinkedInPost)
        .where(
            col(LinkedInPost.member_id) == ctx.member_id,
            col(LinkedInPost.status).in_(
                [LinkedInPostStatus.SCHEDULED, LinkedInPostStatus.WAITING]
            ),
        )
        .values(status=LinkedInPostStatus.CANCELLED, updated_at=ctx.now)
    )
    count = cancelled.rowcount or 0
    extra = f" {count} scheduled post{'s' if count != 1 else ''} won't go out." if count else ""
    return Reply(
        message=Message(
            text=f"{DISCONNECTED}{extra}",
            blocks=(
                Section(text=f"{DISCONNECTED}{extra}"),
                Buttons(buttons=(connect_button("Connect again"),)),
            ),
        ),
        private=True,
    )


def register(router: Router) -> None:
    router.action(actions.LINKEDIN_CONNECT)(connect)
    router.action(actions.LINKEDIN_OPEN)(opened)
    router.action(actions.LINKEDIN_DISCONNECT)(disconnect)
