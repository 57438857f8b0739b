"""Who is looking at the program page, and what they may see.

A signed-in identity (a Slack team and user, an Entra tenant and object id) is the same
member as in chat. Admins and reviewers see their workspace's program; everyone sees their
own page; nobody sees anything of another workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import workspace_settings
from handlers.core.context import Config
from handlers.core.interactions import Actor
from handlers.core.members import ensure_member, is_admin
from storage.models import Member, Workspace


class NotFound(Exception):
    """Nothing here for this viewer (or nothing at all): a 404."""


class Forbidden(Exception):
    """The viewer may not see this page: a 403."""


@dataclass(frozen=True, slots=True)
class Viewer:
    workspace_id: int
    workspace_name: str
    member_id: int
    user_id: str
    name: str
    sees_workspace: bool  # an admin or a reviewer
    timezone: ZoneInfo


def _viewer(workspace: Workspace, member: Member, config: Config) -> Viewer:
    settings = workspace_settings.load(workspace)
    return Viewer(
        workspace_id=workspace.id or 0,
        workspace_name=workspace.name or workspace.external_id,
        member_id=member.id or 0,
        user_id=member.user_id,
        name=member.name or member.user_id,
        sees_workspace=is_admin(member, config, workspace) or member.user_id in settings.reviewers,
        timezone=ZoneInfo(settings.timezone),
    )


async def viewer(
    session: AsyncSession, config: Config, workspace_id: int, member_id: int
) -> Viewer | None:
    """The viewer a session names, as the database says now (roles change); None if gone."""
    member = await session.get(Member, member_id)
    workspace = await session.get(Workspace, workspace_id)
    if member is None or workspace is None or member.workspace_id != workspace.id:
        return None
    return _viewer(workspace, member, config)


async def sign_in(
    session: AsyncSession,
    config: Config,
    *,
    platform: str,
    external_id: str,
    user_id: str,
    name: str,
    email: str | None,
    now: datetime,
) -> Viewer | None:
    """The viewer a verified identity is, or None when Flywheel serves no such workspace.

    A person who never spoke to the bot becomes a member now, like on first contact in chat.
    """
    workspace = (
        await session.exec(
            select(Workspace).where(
                Workspace.platform == platform, Workspace.external_id == external_id
            )
        )
    ).first()
    if workspace is None:
        return None
    actor = Actor(user_id=user_id, name=name, email=email, profile_known=False)
    member = await ensure_member(session, workspace, actor, now)
    return _viewer(workspace, member, config)


def require_workspace(viewer: Viewer) -> None:
    """Workspace-wide pages are for admins and reviewers."""
    if not viewer.sees_workspace:
        raise Forbidden("The program's figures are for admins and reviewers.")


async def member_of(session: AsyncSession, viewer: Viewer, user_id: str) -> Member:
    """The member of the viewer's workspace a person page is about, if the viewer may see it.

    Someone of another workspace does not exist here (404); another member's page is for
    admins and reviewers only (403).
    """
    member = (
        await session.exec(
            select(Member).where(
                Member.workspace_id == viewer.workspace_id, Member.user_id == user_id
            )
        )
    ).first()
    if member is None:
        raise NotFound("No such person.")
    if member.id != viewer.member_id and not viewer.sees_workspace:
        raise Forbidden("Only admins and reviewers see other people's pages.")
    return member
