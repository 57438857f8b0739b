"""The per-interaction context handlers receive, and the one way they send messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import workspace_settings
from handlers.core.messages import Message
from handlers.core.ports import Clock, Directory, Fetcher
from handlers.core.quiet_hours import HOURS_KEY, hours_field, next_allowed, zone
from handlers.core.sealing import Keyring
from storage import outbox
from storage.models import Member, Workspace


class AdminReach:
    """The workspaces FLYWHEEL_ADMINS speaks for: all of them, unless a platform's adapter
    narrows its own to the installation it serves (a single-workspace Slack app's team)."""

    def __init__(self) -> None:
        self._narrowed: dict[str, Callable[[str], bool]] = {}

    def narrow(self, platform: str, covers: Callable[[str], bool]) -> None:
        """From now on, only the workspaces of `platform` that `covers` accepts."""
        self._narrowed[platform] = covers

    def covers(self, workspace: Workspace) -> bool:
        """Whether FLYWHEEL_ADMINS applies in `workspace`."""
        covers = self._narrowed.get(workspace.platform)
        return covers is None or covers(workspace.external_id)


@dataclass(frozen=True, slots=True)
class Config:
    """Process-wide facts handlers need (from Settings, read once at start-up)."""

    admins: frozenset[str] = frozenset()
    public_base_url: str = "http://127.0.0.1:3978"
    # Whether an LLM is configured: AI help is queued for the worker, else a template is used.
    ai_enabled: bool = False
    # Whether members can connect LinkedIn and post from chat (LINKEDIN_CLIENT_ID is set).
    linkedin: bool = False
    # FLYWHEEL_SECRET_KEY and its predecessors: signed links and sealed tokens.
    keyring: Keyring | None = None
    # Learnt from the platforms at start-up, so shared rather than copied.
    admin_reach: AdminReach = field(default_factory=AdminReach)
    # Reads shared links and feeds from the internet; None where nothing may be fetched.
    fetcher: Fetcher | None = None

    def admins_in(self, workspace: Workspace) -> frozenset[str]:
        """The FLYWHEEL_ADMINS ids and emails that count in `workspace`."""
        return self.admins if self.admin_reach.covers(workspace) else frozenset()


def dm(user_id: str) -> dict[str, Any]:
    """Target: a direct message to a person."""
    return {"user": user_id}


def channel(channel_id: str, thread: str | None = None) -> dict[str, Any]:
    """Target: a channel, optionally a thread in it."""
    return {"channel": channel_id, **({"thread": thread} if thread else {})}


def home(user_id: str) -> dict[str, Any]:
    """Target: the person's home tab (App Home on Slack)."""
    return {"home": user_id}


@dataclass
class Scope:
    """One unit of work in one workspace: a session inside a transaction, and a clock reading.

    Scheduled sweeps work in a Scope; interactions get a Context, which adds the actor.
    """

    session: AsyncSession
    clock: Clock
    config: Config
    workspace: Workspace
    now: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.now = self.clock.now()

    @property
    def workspace_id(self) -> int:
        assert self.workspace.id is not None
        return self.workspace.id

    async def send(
        self,
        to: dict[str, Any],
        message: Message,
        *,
        key: str,
        ref_key: str | None = None,
        not_before: datetime | None = None,
        unprompted: bool = False,
    ) -> None:
        """Queue `message` for `to`; sent after this transaction commits, at most once per key.

        `unprompted` marks a message the recipient did not just ask for (a ping, a reminder,
        news about their request): it goes out only inside their working hours, and if it
        could not be sent before they close, it waits for the next day's.
        """
        if unprompted and "user" in to:
            to, opens = await self._within_hours(to)
            not_before = max(not_before, opens) if not_before else opens
        await outbox.enqueue(
            self.session,
            workspace_id=self.workspace_id,
            dedupe_key=f"{self.workspace_id}:{key}",
            kind="home" if "home" in to else "message",
            target=to,
            payload=message.model_dump(mode="json"),
            now=self.now,
            ref_key=ref_key,
            not_before=not_before,
        )

    async def _within_hours(self, to: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
        """`to` with the recipient's working hours, and when they next open."""
        settings = workspace_settings.load(self.workspace)
        query = select(Member.tz).where(
            Member.workspace_id == self.workspace_id, Member.user_id == str(to["user"])
        )
        tz_name = (await self.session.exec(query)).first() or settings.timezone
        hours = settings.working_hours()
        opens = next_allowed(self.now, zone(tz_name), hours)
        return {**to, HOURS_KEY: hours_field(tz_name, hours)}, opens

    async def cancel(self, key: str) -> bool:
        """Withdraw a queued message that has not gone out yet; False if it was already sent."""
        return await outbox.cancel_pending(self.session, f"{self.workspace_id}:{key}")

    async def update(self, ref_key: str, message: Message, *, key: str) -> None:
        """Queue an in-place edit of a message sent earlier with `ref_key`."""
        await outbox.enqueue(
            self.session,
            workspace_id=self.workspace_id,
            dedupe_key=f"{self.workspace_id}:{key}",
            kind="update",
            target={"ref": ref_key},
            payload=message.model_dump(mode="json"),
            now=self.now,
        )


@dataclass
class Context(Scope):
    """A Scope for one interaction: the actor, and the platform's directory of people."""

    member: Member = field(kw_only=True)
    directory: Directory | None = field(default=None, kw_only=True)

    @property
    def member_id(self) -> int:
        assert self.member.id is not None
        return self.member.id
