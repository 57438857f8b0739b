"""Sends outbox deliveries through the Slack Web API and classifies what went wrong."""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from handlers.core.messages import Message
from handlers.core.ports import Delivered, Delivery, PermanentError, RateLimited, TransientError

log = structlog.get_logger(__name__)

# Tries of a response URL that fails (5xx, refused, timed out) before the reply goes to the
# person's DM instead.
RESPONSE_URL_TRIES = 2

# Slack's `ok: false` errors that mean "try again later" rather than "never".
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)


class SlackSender:
    """The Slack side of the outbox: DMs, channel posts, updates, home tabs, response URLs."""

    platform = "slack"

    def __init__(self, client: AsyncWebClient, http: aiohttp.ClientSession | None = None) -> None:
        self.client = client
        self._http = http

    async def send(self, delivery: Delivery) -> Delivered:
        try:
            await self._session()
            return await self._send(delivery)
        except SlackApiError as error:
            raise _classify(error) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from None

    async def _send(self, delivery: Delivery) -> Delivered:
        message = Message.stored(delivery.payload)
        target = delivery.target
        if delivery.kind == "home":
            await self.client.views_publish(user_id=target["home"], view=blocks.home_view(message))
            return Delivered()
        if delivery.kind == "update":
            response = await self.client.chat_update(
                channel=delivery.channel or "",
                ts=delivery.message_id or "",
                **blocks.message(message),
            )
            return Delivered(response.get("channel"), response.get("ts"))
        if "response_url" in target:
            try:
                if await self._respond(target["response_url"], message):
                    return Delivered()
            except (TransientError, TimeoutError, aiohttp.ClientError) as failed:
                if "user" not in target or not _give_up_on_url(delivery):
                    # Tried again shortly: the reply stays where the person asked.
                    raise
                # Slack's response URLs live 30 minutes and the outbox's retries end: the
                # person gets the reply as a direct message rather than not at all.
                log.warning(
                    "slack.response_url_failed",
                    user=target["user"],
                    attempt=delivery.attempt,
                    error=f"{type(failed).__name__}: {failed}"[:200],
                )
            else:
                if "user" not in target:
                    raise PermanentError("response_url expired and no user to message directly")
            target = {"user": target["user"]}
        channel = target.get("channel") or target.get("user")
        if not channel:
            raise PermanentError(f"no Slack destination in {sorted(target)}")
        extra: dict[str, Any] = {"thread_ts": target["thread"]} if target.get("thread") else {}
        # A user id as the channel opens (or reuses) the DM without conversations.open.
        response = await self.client.chat_postMessage(
            channel=channel, **blocks.message(message), **extra
        )
        return Delivered(response.get("channel"), response.get("ts"))

    async def _respond(self, url: str, message: Message) -> bool:
        """Post an ephemeral reply to a response_url; False when Slack no longer accepts it."""
        body = {"response_type": "ephemeral", "replace_original": False, **blocks.message(message)}
        session = await self._session()
        async with session.post(
            url, json=body, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.status == 429:
                raise RateLimited(float(response.headers.get("Retry-After", "1")))
            if response.status >= 500:
                raise TransientError(f"response_url answered {response.status}")
            return response.status < 300

    async def _session(self) -> aiohttp.ClientSession:
        """One connection pool for every call. Without a session of its own, slack_sdk opens
        a new one (and a new connection) per call, which costs about a millisecond of CPU."""
        if self._http is None or self._http.closed:
            # slack_sdk applies its `timeout` only to sessions it makes itself; on a session
            # it is given, the session's own timeout is the one that counts.
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout)
            )
        if self.client.session is None or self.client.session.closed:
            self.client.session = self._http
        return self._http

    async def close(self) -> None:
        """Release the connection pool; a later send opens a new one."""
        if self._http is not None:
            await self._http.close()


def _give_up_on_url(delivery: Delivery) -> bool:
    """A response URL that failed once already (or on the outbox's last try) is given up."""
    return delivery.attempt >= RESPONSE_URL_TRIES or delivery.last_attempt


def _classify(error: SlackApiError) -> Exception:
    response = error.response
    status = getattr(response, "status_code", 200)
    code = str(response.get("error", "")) if hasattr(response, "get") else ""
    if status == 429 or code == "ratelimited":
        headers = getattr(response, "headers", {}) or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after") or "1"
        return RateLimited(float(retry_after), f"Slack rate limit ({code or status})")
    if status >= 500 or code in TRANSIENT_ERRORS:
        return TransientError(f"Slack answered {status} {code}".strip())
    return PermanentError(f"Slack refused the message: {code or status}")


__all__ = ["SlackSender"]
