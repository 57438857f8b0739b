"""Bolt listeners: acknowledge, translate, hand to the router, render the reply. Nothing else.

`COMMANDS`, `SHORTCUTS` and `EVENTS` are what this module listens to; `manifest.yml`
declares the same, and a test holds the two together.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks, translate
from adapters.slack.profiles import Profiles
from handlers.core.interactions import Actor
from handlers.core.messages import Form, Message
from handlers.core.router import Router

log = structlog.get_logger(__name__)

COMMANDS = ("/flywheel",)
# Shortcuts by callback id, and the command each one stands for.
SHORTCUT_COMMANDS = {
    "request_content": "request",
    "request_from_message": "request",
    "share_from_message": "share",
}
SHORTCUTS = tuple(SHORTCUT_COMMANDS)
EVENTS = ("app_mention", "app_home_opened", "message.im")

Body = dict[str, Any]


class Listeners:
    """One listener per kind of Slack request, all speaking to the one router."""

    def __init__(self, router: Router, profiles: Profiles) -> None:
        self.router = router
        self.profiles = profiles

    async def _actor(self, client: AsyncWebClient, body: Body) -> Actor:
        return await self.profiles.actor(
            client,
            translate.team_id(body),
            translate.user_id(body),
            name=translate.user_name(body),
        )

    async def slash_command(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """`/flywheel …`: a form opens, or the answer is the (ephemeral) acknowledgement."""
        command = translate.slash_command(body, await self._actor(client, body))
        reply = await self.router.dispatch(command)
        if reply.form is not None:
            await open_form(client, body["trigger_id"], reply.form)
        if reply.message is not None:
            await ack(**ephemeral(reply.message))
        else:
            await ack()

    async def shortcut(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """Global and message shortcuts: the request form prefilled from the message, or the
        message's link shared (answered through the response URL)."""
        permalink = None
        if body["type"] == "message_action":
            permalink = await message_permalink(
                client, body["channel"]["id"], str(body["message"]["ts"])
            )
        command = translate.shortcut(
            body,
            await self._actor(client, body),
            name=SHORTCUT_COMMANDS[str(body["callback_id"])],
            permalink=permalink,
        )
        reply = await self.router.dispatch(command)
        if reply.form is not None:
            await open_form(client, body["trigger_id"], reply.form)
        await ack()

    async def app_mention(
        self, ack: AsyncAck, body: Body, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """`@Flywheel …` in a channel: the router queues the answer for the thread."""
        if body["event"].get("bot_id"):
            # Another bot's mention: answering could start two bots talking forever.
            await ack()
            return
        actor = await self._actor(client, body)
        await self.router.dispatch(translate.mention(body, actor, bot_user_id=context.bot_user_id))
        await ack()

    async def direct_message(
        self, ack: AsyncAck, body: Body, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """A message in the bot's Messages tab: the same words as anywhere else."""
        event = body["event"]
        if event.get("user") in (None, context.bot_user_id):
            await ack()  # the bot's own messages come back as events too
            return
        interaction = translate.direct_message(body, await self._actor(client, body))
        if interaction is not None:
            # Someone never welcomed who writes first is welcomed first (once: the mark is
            # set in the same transaction that queues the welcome).
            await self.router.dispatch(translate.first_contact(interaction))
            await self.router.dispatch(interaction)
        await ack()

    async def app_home_opened(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """The home tab opened: the router queues a fresh view."""
        event = translate.home_opened(body, await self._actor(client, body))
        if event is not None:
            await self.router.dispatch(event)
        await ack()

    async def block_action(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A button: replies go to the response URL or a DM; a form opens over the button."""
        action = translate.block_action(body, await self._actor(client, body))
        reply = await self.router.dispatch(action)
        if reply.form is not None:
            await open_form(client, body["trigger_id"], reply.form, push=translate.from_modal(body))
        await ack()

    async def view_submission(self, ack: AsyncAck, body: Body, client: AsyncWebClient) -> None:
        """A submitted form: inline errors, a replacement form, or the modal closes."""
        submission = translate.view_submission(body, await self._actor(client, body))
        reply = await self.router.dispatch(submission)
        if reply.errors:
            errors = translate.view_errors(body["view"], reply.errors)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
            # Every form Flywheel opens has an input for each field it checks: a view
            # without them is not one of its forms, as the request claimed.
            log.warning(
                "slack.form_errors_unplaceable",
                form=submission.form_id,
                fields=sorted(reply.errors),
            )
        if reply.form is not None:
            await ack(response_action="update", view=blocks.modal(reply.form))
        else:
            await ack()

    async def unhandled(self, ack: AsyncAck, body: Body) -> None:
        """A button, form or event nothing listens to (a stale message, say): acknowledged,
        so Slack neither shows an error nor retries."""
        log.info("slack.unhandled", **translate.describe(body))
        await ack()


def ephemeral(message: Message) -> dict[str, Any]:
    """A message as the body of an acknowledgement only the actor sees."""
    rendered = blocks.message(message)
    body: dict[str, Any] = {"response_type": "ephemeral", "text": rendered["text"]}
    if rendered["blocks"]:
        body["blocks"] = rendered["blocks"]
    return body


async def open_form(
    client: AsyncWebClient, trigger_id: str, form: Form, *, push: bool = False
) -> None:
    """Open a form as a modal (pushed onto the current one when asked from inside a modal)."""
    view = blocks.modal(form)
    if push:
        await client.views_push(trigger_id=trigger_id, view=view)
    else:
        await client.views_open(trigger_id=trigger_id, view=view)


async def message_permalink(client: AsyncWebClient, channel: str, ts: str) -> str | None:
    """A link back to the message a request started from; the request stands without it."""
    try:
        response = await client.chat_getPermalink(channel=channel, message_ts=ts)
    except SlackApiError as error:
        log.warning(
            "slack.permalink_unavailable",
            channel=channel,
            error=str(error.response.get("error") or error.response.status_code),
        )
        return None
    permalink = response.get("permalink")
    return str(permalink) if permalink else None


def register(app: AsyncApp, listeners: Listeners, router: Router) -> None:
    """Attach every listener; explicit ones first, then catch-alls that only acknowledge."""
    for command in COMMANDS:
        app.command(command)(listeners.slash_command)
    for callback_id in SHORTCUTS:
        app.shortcut(callback_id)(listeners.shortcut)
    by_event = {"app_mention": listeners.app_mention, "app_home_opened": listeners.app_home_opened}
    for event in EVENTS:
        if event in by_event:
            app.event(event)(by_event[event])
    # `message.im` in the manifest arrives as a `message` event from a DM channel; what
    # is not one (another channel, an edit, a bot) is told apart by the translation.
    app.event("message")(listeners.direct_message)
    for action in router.actions:
        app.block_action(action)(listeners.block_action)
    for form_id in router.forms:
        app.view_submission(form_id)(listeners.view_submission)
    anything = re.compile(".*")
    app.block_action(anything)(listeners.unhandled)
    app.view_submission(anything)(listeners.unhandled)
    app.event(anything)(listeners.unhandled)
