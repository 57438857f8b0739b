"""Calls to the Bot Connector through CloudAdapter: proactive turns, tuned and classified.

Every call the bot makes to Teams goes through here, so every call gets the same short
timeout, no retries of its own (the outbox retries, with backoff and limits), and the same
reading of what went wrong.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationParameters,
)
from botbuilder.schema import ConversationReference as Reference
from botframework.connector.aio import ConnectorClient
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams import cards
from adapters.teams.translate import CHANNEL_ID
from handlers.core.ports import DeliveryError, PermanentError, RateLimited, TransientError

T = TypeVar("T")

# Teams' own answers that mean "try again later": throttled, a concurrent edit (412), a
# gateway that lost its upstream (502, 504) — and any other 5xx.
RETRIED = frozenset({412, 429, 502, 504})
# The Connector's refusals that no retry will change, in words whoever reads the reason can
# act on (Microsoft's "status codes from bot API calls"); other codes are shown as they are.
REFUSED = {
    "BotNotInConversationRoster": "Flywheel is no longer in that conversation: add the app "
    "to the team (or chat) again",
    "ConversationNotFound": "that conversation no longer exists (a deleted channel or chat)",
    "ConversationBlockedByUser": "the person or the channel's moderators blocked Flywheel",
    "BotDisabledByAdmin": "a Teams admin has blocked Flywheel in this tenant",
}
INBOUND_TIMEOUT = 3
OUTBOUND_TIMEOUT = 10
THROTTLE_FLOOR = 1.0


def tune(client: ConnectorClient | None, timeout: float) -> None:
    """A short timeout and no retries inside msrest: the caller decides what happens next."""
    if client is None:
        return
    client.config.connection.timeout = timeout
    client.config.retry_policy.retries = 0


def status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retry_after(error: BaseException) -> float:
    """Teams' Retry-After when it gives one, else a jittered pause of one to two seconds."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(str(raw)))
    except (TypeError, ValueError):
        return THROTTLE_FLOOR + random.uniform(0, THROTTLE_FLOOR)


def classify(error: BaseException) -> DeliveryError:
    """A failed call as the outbox understands it: later, with backoff, or never."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, HttpOperationError):
        status = status_of(error)
        if status == 429:
            return RateLimited(retry_after(error), "Teams answered 429")
        if status is None or status in RETRIED or status >= 500:
            return TransientError(f"Teams answered {status}")
        code = _code(error)
        meaning = f" — {REFUSED[code]}" if code in REFUSED else ""
        return PermanentError(f"Teams refused the call: {status} {code}".strip() + meaning)
    if isinstance(error, (ClientRequestError, aiohttp.ClientError, TimeoutError, OSError)):
        return TransientError(f"{type(error).__name__}: {error}"[:300])
    raise error


def _code(error: HttpOperationError) -> str:
    body = getattr(getattr(error, "error", None), "error", None)
    return str(getattr(body, "code", "") or "")


class Connector:
    """Proactive turns for the outbox: continue a stored conversation, or start a 1:1 chat."""

    def __init__(self, cloud: CloudAdapter, app_id: str | None) -> None:
        self.cloud = cloud
        self.app_id = app_id

    async def continue_in(
        self,
        reference: dict[str, Any],
        conversation_id: str,
        work: Callable[[TurnContext], Awaitable[T]],
    ) -> T:
        """Run `work` in a proactive turn in `conversation_id` (a thread id reaches the thread)."""
        ref = Reference().deserialize(reference)
        ref.conversation.id = conversation_id
        return await self._run(
            lambda callback: self.cloud.continue_conversation(
                ref, callback, bot_app_id=self.app_id
            ),
            work,
        )

    async def start_chat(
        self,
        *,
        service_url: str,
        tenant_id: str,
        bot_id: str,
        user_id: str,
        work: Callable[[TurnContext], Awaitable[T]],
    ) -> T:
        """Open (or reopen: Teams returns the same chat) the bot's 1:1 chat with a member."""
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=bot_id),
            members=[ChannelAccount(id=user_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        return await self._run(
            lambda callback: self.cloud.create_conversation(
                self.app_id,
                callback,
                parameters,
                channel_id=CHANNEL_ID,
                service_url=service_url,
            ),
            work,
        )

    async def _run(
        self,
        start: Callable[[Callable[[TurnContext], Awaitable[None]]], Awaitable[Any]],
        work: Callable[[TurnContext], Awaitable[T]],
    ) -> T:
        results: list[T] = []
        failures: list[Exception] = []

        async def callback(turn_context: TurnContext) -> None:
            tune(turn_context.turn_state.get(self.cloud.BOT_CONNECTOR_CLIENT_KEY), OUTBOUND_TIMEOUT)
            # Caught here: the SDK would hand it to the adapter's turn-error handler, which
            # is for inbound turns, and the outbox would never learn the send failed.
            try:
                results.append(await work(turn_context))
            except Exception as error:  # classified below, like a failure to start the turn
                failures.append(error)

        try:
            await start(callback)
        except Exception as error:  # classify() re-raises what it doesn't know
            raise classify(error) from None
        if failures:
            raise classify(failures[0]) from None
        if not results:
            raise TransientError("the proactive turn did not run")
        return results[0]


def card_activity(card: dict[str, Any], text: str, *, activity_id: str | None = None) -> Activity:
    """A message activity carrying one Adaptive Card; `text` is the notification line."""
    return Activity(
        type=ActivityTypes.message,
        id=activity_id,
        summary=text[:200],
        attachments=[Attachment(content_type=cards.CONTENT_TYPE, content=card)],
    )
