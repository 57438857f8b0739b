"""Workspaces and members, created the first time they are seen and kept current."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import and_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core import markup
from handlers.core.context import Config
from handlers.core.interactions import Actor, Origin
from handlers.core.markup import Markup
from storage.models import Member, Workspace
from storage.upsert import insert_ignore

# Built once, since every interaction runs it: building a select and computing its cache key
# cost as much as running it. Both rows come in one round trip, read in the interaction's
# own transaction, so what handlers see and change is the database's current state (the
# settings an admin saved a moment ago in another process, say), never a cached copy.
_WORKSPACE_AND_MEMBER = (
    select(Workspace, Member)
    .outerjoin(
        Member,
        and_(Member.workspace_id == Workspace.id, Member.user_id == bindparam("user_id")),
    )
    .where(
        Workspace.platform == bindparam("platform"),
        Workspace.external_id == bindparam("external_id"),
    )
)


async def resolve(
    session: AsyncSession, origin: Origin, actor: Actor, now: datetime
) -> tuple[Workspace, Member]:
    """The workspace and the acting member, created on first contact; one query when both
    exist. Profile changes the platform reports are written in the same transaction."""
    row = (
        await session.exec(
            _WORKSPACE_AND_MEMBER,
            params={
                "platform": origin.platform,
                "external_id": origin.workspace_id,
                "user_id": actor.user_id,
            },
        )
    ).first()
    if row is None:
        workspace = await ensure_workspace(session, origin, now)
        return workspace, await ensure_member(session, workspace, actor, now)
    workspace, member = row
    _follow_name(session, workspace, origin)
    if member is None:
        return workspace, await ensure_member(session, workspace, actor, now)
    _follow_profile(session, member, actor, now)
    return workspace, member


async def ensure_workspace(session: AsyncSession, origin: Origin, now: datetime) -> Workspace:
    """The workspace row for a platform team or tenant, created on first contact."""
    query = select(Workspace).where(
        Workspace.platform == origin.platform, Workspace.external_id == origin.workspace_id
    )
    workspace = (await session.exec(query)).first()
    if workspace is None:
        # Two first requests may race: the unique key lets one insert, both then read it.
        await insert_ignore(
            session,
            Workspace.__table__,  # type: ignore[attr-defined]
            {
                "platform": origin.platform,
                "external_id": origin.workspace_id,
                "name": origin.workspace_name,
                "settings": {},
                "created_at": now,
            },
            ("platform", "external_id"),
        )
        return (await session.exec(query)).one()
    _follow_name(session, workspace, origin)
    return workspace


def _follow_name(session: AsyncSession, workspace: Workspace, origin: Origin) -> None:
    if origin.workspace_name and workspace.name != origin.workspace_name:
        workspace.name = origin.workspace_name
        session.add(workspace)


async def ensure_member(
    session: AsyncSession, workspace: Workspace, actor: Actor, now: datetime
) -> Member:
    """The member row for the actor; profile fields follow what the platform says."""
    query = select(Member).where(
        Member.workspace_id == workspace.id, Member.user_id == actor.user_id
    )
    member = (await session.exec(query)).first()
    if member is None:
        await insert_ignore(
            session,
            Member.__table__,  # type: ignore[attr-defined]
            {
                "workspace_id": workspace.id,
                "user_id": actor.user_id,
                "name": actor.name,
                "email": actor.email,
                "tz": actor.tz,
                "title": actor.title,
                "is_platform_admin": actor.is_platform_admin,
                "is_bot": actor.is_bot,
                "created_at": now,
                "updated_at": now,
            },
            ("workspace_id", "user_id"),
        )
        return (await session.exec(query)).one()
    _follow_profile(session, member, actor, now)
    return member


def _follow_profile(session: AsyncSession, member: Member, actor: Actor, now: datetime) -> None:
    """Copy what the platform says about the person onto their row, when it changed."""
    if not actor.profile_known:
        return
    changed = False
    for attr in ("name", "email", "tz", "title"):
        value = getattr(actor, attr)
        if value and getattr(member, attr) != value:
            setattr(member, attr, value)
            changed = True
    if member.is_platform_admin != actor.is_platform_admin or member.is_bot != actor.is_bot:
        member.is_platform_admin, member.is_bot = actor.is_platform_admin, actor.is_bot
        changed = True
    if changed:
        member.updated_at = now
        session.add(member)


def is_admin(member: Member, config: Config, workspace: Workspace) -> bool:
    """Platform admins and owners, plus the ids and emails in FLYWHEEL_ADMINS where those
    apply (`Config.admins_in`): `member` belongs to `workspace`."""
    if member.is_platform_admin:
        return True
    admins = config.admins_in(workspace)
    return member.user_id in admins or bool(member.email and member.email.lower() in admins)


def mention(member: Member) -> Markup:
    """How messages refer to a person; adapters turn `<@id>` into their own mention."""
    return markup.mention(member.user_id)
