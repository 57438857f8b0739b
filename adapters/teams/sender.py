"""The Teams side of the outbox: chats, channels and in-place card updates, proactively.

A delivery names a person (`{"user": id}`), a conversation (`{"channel": id}`, optionally
with a `thread`) or, for an update, the conversation and activity id where the original
landed. People are reached in their 1:1 chat with the bot; when there is none yet, one is
started through a team of theirs where the app is installed.

Most deliveries carry a neutral message, rendered here. A `card` delivery carries a card
already drawn: the answer of a turn the Connector could not take at the time (a form, or
the note that replaces a submitted one, `{"replace": activity id}`), sent as it was drawn.
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from botbuilder.core import TurnContext
from pydantic import ValidationError
from sqlmodel import col, select

from adapters.teams import cards, markdown, references
from adapters.teams.connector import Connector, card_activity
from adapters.teams.limits import ConversationBusy, TeamsLimiter, Ticket
from adapters.teams.references import PERSONAL, THREAD_MARK, Seen
from handlers.core.messages import Message
from handlers.core.ports import Clock, Delivered, Delivery, PermanentError, RateLimited
from storage.db import SessionFactory, transaction
from storage.models import ConversationReference, Member, Workspace

log = structlog.get_logger(__name__)

# An outbox kind of this adapter's own: a turn's answer, drawn as a card during the turn.
CARD = "card"

_MENTION = re.compile(r"<@([^>|\s]+)")
_CHANNEL = re.compile(r"<#([^<>|\s]+)>")


class TeamsSender:
    """Sends outbox deliveries to Teams through the Bot Connector, within Teams' limits."""

    platform = "teams"

    def __init__(
        self,
        connector: Connector,
        sessions: SessionFactory,
        clock: Clock,
        limiter: TeamsLimiter | None = None,
    ) -> None:
        self.connector = connector
        self.sessions = sessions
        self.clock = clock
        self.limiter = limiter or TeamsLimiter()
        self._workspaces: dict[str, int] = {}

    async def send(self, delivery: Delivery) -> Delivered:
        if delivery.kind == "home":
            # Teams has no home tab to publish; `home` in the chat shows the same view.
            return Delivered()
        workspace_id = await self._workspace_id(delivery.workspace)
        if delivery.kind == CARD:
            return await self._drawn(workspace_id, delivery)
        try:
            message = Message.stored(delivery.payload)
        except ValidationError as error:
            raise PermanentError(f"not a message: {error.error_count()} problem(s)") from None
        names = await self._names(workspace_id, delivery.payload)
        channels = await self._channel_names(workspace_id, delivery.payload)
        card = cards.message_card(message, names=names, channels=channels)
        text = markdown.summary(message, names=names)
        if delivery.kind == "update":
            return await self._update(
                workspace_id,
                delivery.workspace,
                delivery.channel or "",
                delivery.message_id or "",
                card,
                text,
            )
        return await self._to_target(workspace_id, delivery, card, text)

    async def _drawn(self, workspace_id: int, delivery: Delivery) -> Delivered:
        """A turn's answer, sent (or put in place of the card it replaces) as it was drawn."""
        card, text = delivery.payload.get("card"), delivery.payload.get("text")
        if not isinstance(card, dict) or not isinstance(text, str):
            raise PermanentError("a queued card without its card or its text")
        replace = delivery.target.get("replace")
        if replace and delivery.target.get("channel"):
            return await self._update(
                workspace_id,
                delivery.workspace,
                str(delivery.target["channel"]),
                str(replace),
                card,
                text,
            )
        return await self._to_target(workspace_id, delivery, card, text)

    async def _to_target(
        self, workspace_id: int, delivery: Delivery, card: dict[str, Any], text: str
    ) -> Delivered:
        target = delivery.target
        if target.get("user"):
            return await self._to_person(
                workspace_id, delivery.workspace, str(target["user"]), card, text
            )
        if target.get("channel"):
            conversation = str(target["channel"])
            if target.get("thread") and THREAD_MARK not in conversation:
                conversation = f"{conversation}{THREAD_MARK}{target['thread']}"
            return await self._to_conversation(
                workspace_id, delivery.workspace, conversation, card, text
            )
        raise PermanentError(f"no Teams destination in {sorted(target)}")

    async def send_card(
        self, tenant: str, user_id: str, card: dict[str, Any], text: str
    ) -> Delivered:
        """A card for one person straight away (a form opened from a channel), not queued."""
        workspace_id = await self._workspace_id(tenant)
        return await self._to_person(workspace_id, tenant, user_id, card, text)

    # -- destinations -----------------------------------------------------------------------

    async def _to_conversation(
        self, workspace_id: int, tenant: str, conversation: str, card: dict[str, Any], text: str
    ) -> Delivered:
        async with self.sessions() as session:
            ref = await references.by_conversation(session, workspace_id, conversation)
        if ref is None or not ref.installed:
            raise PermanentError("Flywheel is not installed in that Teams conversation")
        ticket = await self.limiter.acquire(conversation, tenant)
        activity_id = await self._post(ref.reference, tenant, conversation, card, text, ticket)
        return Delivered(conversation, activity_id)

    async def _to_person(
        self, workspace_id: int, tenant: str, user_id: str, card: dict[str, Any], text: str
    ) -> Delivered:
        async with self.sessions() as session:
            chat = await references.personal_chat(session, workspace_id, user_id)
            team = (
                None if chat is not None else await references.installed_team(session, workspace_id)
            )
        if chat is not None:
            return await self._to_conversation(
                workspace_id, tenant, chat.conversation_id, card, text
            )
        if team is None:
            raise PermanentError(
                "no chat with this person, and Flywheel is installed in none of the tenant's teams"
            )
        # A new chat has no history to count against; the tenant's limit still applies.
        await self.limiter.acquire(f"new:{user_id}", tenant)

        async def post(turn_context: TurnContext) -> Delivered:
            reference = TurnContext.get_conversation_reference(turn_context.activity)
            conversation = str(turn_context.activity.conversation.id)
            await self._remember_chat(workspace_id, tenant, user_id, reference.serialize(), team)
            response = await turn_context.send_activity(card_activity(card, text))
            return Delivered(conversation, str(response.id) if response and response.id else None)

        landed = await self.connector.start_chat(
            service_url=team.service_url,
            tenant_id=tenant,
            bot_id=team.bot_id,
            user_id=user_id,
            work=post,
        )
        log.info("teams.chat_started", tenant=tenant, user=user_id)
        return landed

    async def _update(
        self,
        workspace_id: int,
        tenant: str,
        conversation: str,
        activity_id: str,
        card: dict[str, Any],
        text: str,
    ) -> Delivered:
        async with self.sessions() as session:
            ref = await references.by_conversation(session, workspace_id, conversation)
        if ref is None:
            raise PermanentError("the conversation of the card to update is unknown")
        await self.limiter.acquire(conversation, tenant)

        async def edit(turn_context: TurnContext) -> None:
            activity = card_activity(card, text, activity_id=activity_id)
            await turn_context.update_activity(activity)

        await self.connector.continue_in(ref.reference, conversation, edit)
        return Delivered(conversation, activity_id)

    async def _post(
        self,
        reference: dict[str, Any],
        tenant: str,
        conversation: str,
        card: dict[str, Any],
        text: str,
        ticket: Ticket,
    ) -> str | None:
        refused: list[RateLimited] = []

        async def post(turn_context: TurnContext) -> str | None:
            # The turn's set-up (tokens, middleware) takes time on a busy machine: a send that
            # would now land well after its slot takes a new one rather than crowd the window.
            if ticket.late():
                try:
                    await self.limiter.acquire(conversation, tenant, missed=ticket)
                except RateLimited as limited:
                    refused.append(limited)
                    raise
            response = await turn_context.send_activity(card_activity(card, text))
            return str(response.id) if response and response.id else None

        try:
            return await self.connector.continue_in(reference, conversation, post)
        except RateLimited as limited:
            if refused:
                raise refused[0] from None  # the shared limits' answer, not Teams'
            if not isinstance(limited, ConversationBusy):
                # Teams' 429s are counted per conversation: hold this one back, not the tenant.
                await self.limiter.throttled(conversation, tenant, limited.retry_after)
                raise ConversationBusy(limited.retry_after, str(limited)) from None
            raise

    # -- lookups ----------------------------------------------------------------------------

    async def _remember_chat(
        self,
        workspace_id: int,
        tenant: str,
        user_id: str,
        reference: dict[str, Any],
        team: ConversationReference,
    ) -> None:
        seen = Seen(
            conversation_id=str(reference["conversation"]["id"]),
            kind=PERSONAL,
            tenant_id=tenant,
            service_url=team.service_url,
            bot_id=team.bot_id,
            reference=reference,
            user_id=user_id,
        )
        async with transaction(self.sessions) as session:
            await references.remember(session, workspace_id, seen, self.clock.now())

    async def _workspace_id(self, tenant: str) -> int:
        known = self._workspaces.get(tenant)
        if known is None:
            async with self.sessions() as session:
                query = select(Workspace.id).where(
                    Workspace.platform == "teams", Workspace.external_id == tenant
                )
                found = (await session.exec(query)).first()
            if found is None:
                raise PermanentError(f"unknown Teams tenant {tenant}")
            known = self._workspaces[tenant] = found
        return known

    async def drawn(self, tenant: str, message: Message) -> tuple[dict[str, Any], str]:
        """A message's card and notification text, with people and channels by their names,
        for an answer given within the turn as for one sent later."""
        payload = message.model_dump(mode="json")
        try:
            workspace_id = await self._workspace_id(tenant)
        except PermanentError:
            return cards.message_card(message), markdown.summary(message)
        names = await self._names(workspace_id, payload)
        channels = await self._channel_names(workspace_id, payload)
        card = cards.message_card(message, names=names, channels=channels)
        return card, markdown.summary(message, names=names)

    async def _channel_names(self, workspace_id: int, payload: Any) -> dict[str, str]:
        """Names for the `<#id>` references in a message (`Team › channel`): a Teams
        conversation id means nothing to a reader, and the name is known from the team's
        own activities."""
        raw = json.dumps(payload, ensure_ascii=False) if isinstance(payload, dict) else ""
        ids = set(_CHANNEL.findall(raw))
        if not ids:
            return {}
        async with self.sessions() as session:
            query = select(ConversationReference.conversation_id, ConversationReference.name).where(
                ConversationReference.workspace_id == workspace_id,
                col(ConversationReference.conversation_id).in_(ids),
            )
            found = (await session.exec(query)).all()
        return {cid: " ".join(name.split()) for cid, name in found if name and name.strip()}

    async def _names(self, workspace_id: int, payload: dict[str, Any]) -> dict[str, str]:
        """Display names for the `<@id>` mentions in a message, from the members table."""
        ids = set(_MENTION.findall(repr(payload)))
        if not ids:
            return {}
        async with self.sessions() as session:
            query = select(Member.user_id, Member.name).where(
                Member.workspace_id == workspace_id, col(Member.user_id).in_(ids)
            )
            return {uid: name for uid, name in (await session.exec(query)).all() if name}


__all__ = ["TeamsSender"]
