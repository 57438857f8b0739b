"""Conversation references and form cards in the database: what proactive sends start from.

Every inbound turn refreshes its conversation's reference (service URL, bot, tenant, who),
so the outbox can reach people and channels later, from any process, after any restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.messages import Form
from storage.models import ConversationReference, TeamsFormCard
from storage.upsert import insert_ignore

PERSONAL, CHANNEL, GROUP = "personal", "channel", "groupChat"
THREAD_MARK = ";messageid="

_references = ConversationReference.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Seen:
    """One conversation as an inbound activity describes it."""

    conversation_id: str
    kind: str
    tenant_id: str
    service_url: str
    bot_id: str
    reference: dict[str, Any]
    user_id: str | None = None
    team_id: str | None = None
    name: str = ""
    installed: bool = True


def base_conversation(conversation_id: str) -> str:
    """A channel thread's id without its `;messageid=…`: the channel it lives in."""
    return conversation_id.split(THREAD_MARK, 1)[0]


async def remember(session: AsyncSession, workspace_id: int, seen: Seen, now: datetime) -> None:
    """Insert or refresh the reference of one conversation."""
    values: dict[str, Any] = {
        "kind": seen.kind,
        "tenant_id": seen.tenant_id,
        "service_url": seen.service_url,
        "bot_id": seen.bot_id,
        "reference": seen.reference,
        "installed": seen.installed,
        "updated_at": now,
    }
    # Fields an activity may leave out (a team's name) keep what an earlier one said.
    for field in ("user_id", "team_id"):
        if getattr(seen, field):
            values[field] = getattr(seen, field)
    if seen.name:
        values["name"] = seen.name
    conversation_id = base_conversation(seen.conversation_id)
    inserted = await insert_ignore(
        session,
        _references,
        {
            "workspace_id": workspace_id,
            "conversation_id": conversation_id,
            "user_id": seen.user_id,
            "team_id": seen.team_id,
            "name": seen.name,
            "created_at": now,
            **values,
        },
        ("workspace_id", "conversation_id"),
    )
    if not inserted:
        await session.exec(
            update(_references)
            .where(
                _references.c.workspace_id == workspace_id,
                _references.c.conversation_id == conversation_id,
            )
            .values(**values)
        )


async def uninstalled(
    session: AsyncSession,
    workspace_id: int,
    conversation_id: str,
    team_id: str | None,
    now: datetime,
) -> None:
    """The app was removed: from a personal chat or group chat, or from a whole team."""
    where = (
        _references.c.team_id == team_id
        if team_id
        else _references.c.conversation_id == base_conversation(conversation_id)
    )
    await session.exec(
        update(_references)
        .where(_references.c.workspace_id == workspace_id, where)
        .values(installed=False, updated_at=now)
    )


async def by_conversation(
    session: AsyncSession, workspace_id: int, conversation_id: str
) -> ConversationReference | None:
    """The reference of a conversation (a thread resolves to its channel)."""
    query = select(ConversationReference).where(
        ConversationReference.workspace_id == workspace_id,
        ConversationReference.conversation_id == base_conversation(conversation_id),
    )
    return (await session.exec(query)).first()


async def personal_chat(
    session: AsyncSession, workspace_id: int, user_id: str
) -> ConversationReference | None:
    """The bot's 1:1 chat with a person, if there is one."""
    query = (
        select(ConversationReference)
        .where(
            ConversationReference.workspace_id == workspace_id,
            ConversationReference.kind == PERSONAL,
            ConversationReference.user_id == user_id,
            col(ConversationReference.installed).is_(True),
        )
        .order_by(col(ConversationReference.updated_at).desc())
    )
    return (await session.exec(query.limit(1))).first()


async def installed_team(session: AsyncSession, workspace_id: int) -> ConversationReference | None:
    """A team of the tenant the app is installed in, most recently heard from: where a 1:1
    chat with one of its members can be started."""
    query = (
        select(ConversationReference)
        .where(
            ConversationReference.workspace_id == workspace_id,
            ConversationReference.kind == CHANNEL,
            col(ConversationReference.team_id).is_not(None),
            col(ConversationReference.installed).is_(True),
        )
        .order_by(col(ConversationReference.updated_at).desc())
    )
    return (await session.exec(query.limit(1))).first()


async def channels(session: AsyncSession, workspace_id: int) -> list[tuple[str, str]]:
    """(id, name) of the channels the app is installed in, for channel pickers."""
    query = (
        select(ConversationReference.conversation_id, ConversationReference.name)
        .where(
            ConversationReference.workspace_id == workspace_id,
            ConversationReference.kind == CHANNEL,
            col(ConversationReference.installed).is_(True),
        )
        .order_by(col(ConversationReference.name))
    )
    return [(cid, name or cid) for cid, name in (await session.exec(query)).all()]


# -- form cards ---------------------------------------------------------------------------


def state_key(state: str) -> str:
    """A fixed-size key for a form's state, which can be long."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


async def remember_form(
    session: AsyncSession, workspace_id: int, user_id: str, form: Form, now: datetime
) -> None:
    """Keep a form shown to a person, so their submission can be read and re-shown."""
    key = state_key(form.state)
    row = {"form": form.model_dump(mode="json"), "created_at": now}
    inserted = await insert_ignore(
        session,
        TeamsFormCard.__table__,  # type: ignore[attr-defined]
        {
            "workspace_id": workspace_id,
            "user_id": user_id,
            "form_id": form.form_id,
            "state_key": key,
            **row,
        },
        ("workspace_id", "user_id", "form_id", "state_key"),
    )
    if not inserted:
        table = TeamsFormCard.__table__  # type: ignore[attr-defined]
        await session.exec(
            update(table)
            .where(
                table.c.workspace_id == workspace_id,
                table.c.user_id == user_id,
                table.c.form_id == form.form_id,
                table.c.state_key == key,
            )
            .values(**row)
        )


async def shown_form(
    session: AsyncSession, workspace_id: int, user_id: str, form_id: str, state: str
) -> Form | None:
    """The form this person was shown with this id and state, or None."""
    query = select(TeamsFormCard.form).where(
        TeamsFormCard.workspace_id == workspace_id,
        TeamsFormCard.user_id == user_id,
        TeamsFormCard.form_id == form_id,
        TeamsFormCard.state_key == state_key(state),
    )
    stored = (await session.exec(query)).first()
    return Form.stored(stored) if stored is not None else None
