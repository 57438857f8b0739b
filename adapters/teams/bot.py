"""The Teams activity handler: records where it was spoken to, translates, asks the router.

Nothing here decides anything: a message becomes a Command, a card's submit data an Action
or a Submission, a message-extension action a Command started from a message; the router
answers, and the answer is rendered as a card — in the chat, or as the dialog's content.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import structlog
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ActivityTypes, AdaptiveCardInvokeResponse
from botbuilder.schema.teams import (
    ConfigTaskResponse,
    MessagingExtensionResponse,
    MessagingExtensionResult,
    TaskModuleMessageResponse,
    TaskModuleResponse,
)

from adapters.teams import cards, markdown, references, submits, translate
from adapters.teams.connector import INBOUND_TIMEOUT, card_activity, classify, tune
from adapters.teams.limits import TeamsLimiter
from adapters.teams.profiles import Profiles
from adapters.teams.references import PERSONAL
from adapters.teams.sender import CARD, TeamsSender
from handlers.core.interactions import Actor, Origin, Reply
from handlers.core.members import ensure_workspace
from handlers.core.messages import Form, FormValue, Message, notice
from handlers.core.ports import DeliveryError, PermanentError, RateLimited, TransientError
from handlers.core.router import Router
from storage import outbox
from storage.db import transaction

log = structlog.get_logger(__name__)

# Message-extension action commands (the app manifest's commandIds), and the command each
# stands for.
MESSAGE_ACTIONS = {"request_from_message": "request", "share_from_message": "share"}
EXPIRED_FORM = "That form is no longer open. Start again from the chat — `help` lists how."
# The error key of a submit the card itself refused: no field has this name, so the card
# shows the error above its fields.
UNREADABLE = "_submit"
# Where a turn counts the replies it has sent, so each queued one has a key of its own.
REPLIES = "flywheel.replies"


# What the invokes Flywheel does not serve are told: each in the shape its invoke expects,
# since Teams shows an error for a 501 (the SDK's answer to an invoke it has no handler for).
SUBMITTED = "✓ Sent."
NOT_SERVED = "That isn't something Flywheel does here. Write `help` in the chat with me."
# Universal Actions' "show this message" answer to `adaptiveCard/action`.
CARD_MESSAGE = "application/vnd.microsoft.activity.message"
# Message-extension invokes answered with a result list.
SEARCHES = frozenset(
    {
        "composeExtension/query",
        "composeExtension/queryLink",
        "composeExtension/anonymousQueryLink",
        "composeExtension/selectItem",
    }
)


def _ok(body: Any = None) -> InvokeResponse:
    """A 200 invoke response; SDK models are serialized to the JSON Teams reads."""
    if body is not None and not isinstance(body, dict):
        body = serializer_helper(body)
    return InvokeResponse(status=200, body=body if body is not None else {})


def card_action_message(text: str) -> InvokeResponse:
    """`adaptiveCard/action` answered with a message shown in place of the card's spinner."""
    body = serializer_helper(AdaptiveCardInvokeResponse(status_code=200, type=CARD_MESSAGE))
    # The SDK types `value` as an object, but this response carries the message as a string.
    body["value"] = text[:1000]
    return _ok(body)


def config_message(text: str) -> InvokeResponse:
    """`config/fetch` and `config/submit` answered with a message instead of a settings page."""
    body = serializer_helper(ConfigTaskResponse(config=TaskModuleMessageResponse(value=text)))
    # The model's serialization map drops the `responseType` its base declares.
    body["responseType"] = "config"
    return _ok(body)


def no_results() -> InvokeResponse:
    """A search of the message extension: nothing to list (Flywheel declares no search)."""
    return _ok(
        MessagingExtensionResponse(
            compose_extension=MessagingExtensionResult(
                type="result", attachment_layout="list", attachments=[]
            )
        )
    )


def _dialog(form: Form, card: dict[str, Any]) -> InvokeResponse:
    """A dialog (task module) showing a form."""
    return _ok(
        {
            "task": {
                "type": "continue",
                "value": {
                    "title": form.title[:64],
                    "card": cards.attachment(card),
                    "width": "medium",
                },
            }
        }
    )


def _dialog_message(text: str) -> InvokeResponse:
    return _ok(TaskModuleResponse(task=TaskModuleMessageResponse(value=text[:1000])))


class FlywheelTeamsBot(TeamsActivityHandler):  # type: ignore[misc]
    """One handler for every Teams activity; all decisions are the router's."""

    def __init__(
        self,
        router: Router,
        sender: TeamsSender,
        profiles: Profiles,
        limiter: TeamsLimiter,
        connector_key: str,
    ) -> None:
        self.router = router
        self.sender = sender
        self.profiles = profiles
        self.limiter = limiter
        self._connector_key = connector_key
        self._workspaces: dict[str, int] = {}

    # -- every turn -------------------------------------------------------------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        tune(turn_context.turn_state.get(self._connector_key), INBOUND_TIMEOUT)
        await self._remember(turn_context)
        await super().on_turn(turn_context)

    async def _remember(self, turn_context: TurnContext) -> None:
        """Keep this conversation's reference, so the bot can speak here later unprompted."""
        activity = turn_context.activity
        removed = _removed(activity)
        reference = TurnContext.get_conversation_reference(activity).serialize()
        seen = translate.seen(activity, reference, installed=not removed)
        tenant = seen.tenant_id
        now = self.router.clock.now()
        async with transaction(self.router.sessions) as session:
            workspace_id = await self._workspace_id(session, tenant)
            await references.remember(session, workspace_id, seen, now)
            if removed:
                team_id, _ = translate.team(activity)
                await references.uninstalled(
                    session, workspace_id, seen.conversation_id, team_id, now
                )
        if removed:
            log.info("teams.uninstalled", tenant=tenant, conversation=seen.conversation_id)

    async def _workspace_id(self, session: Any, tenant: str) -> int:
        known = self._workspaces.get(tenant)
        if known is None:
            origin = Origin(platform="teams", workspace_id=tenant)
            workspace = await ensure_workspace(session, origin, self.router.clock.now())
            assert workspace.id is not None
            known = self._workspaces[tenant] = workspace.id
        return known

    # -- installs: the welcome ---------------------------------------------------------------

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        bot = activity.recipient.id if activity.recipient else None
        if bot and any(member.id == bot for member in activity.members_added or []):
            await self._installed(turn_context)
        await super().on_conversation_update_activity(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._installed(turn_context)

    async def _installed(self, turn_context: TurnContext) -> None:
        """Added to a team, a chat or someone's personal scope: whoever added it is welcomed
        (once, however many of the install's activities arrive)."""
        activity = turn_context.activity
        if not await self._first_delivery(activity):
            return
        actor = await self.profiles.actor(turn_context)
        await self.router.dispatch(translate.installed(activity, actor))

    # -- messages: commands and card submits -------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if not await self._first_delivery(activity):
            return
        actor = await self.profiles.actor(turn_context)
        if isinstance(activity.value, dict) and activity.value:
            await self._card_submit(turn_context, actor, activity.value)
            return
        if translate.conversation_kind(activity) == PERSONAL:
            # Someone never welcomed who writes first is welcomed with the answer (once).
            await self.router.dispatch(translate.first_contact(activity, actor))
        reply = await self.router.dispatch(translate.command(activity, actor))
        await self._answer(turn_context, actor, reply)

    async def _first_delivery(self, activity: Activity) -> bool:
        """The Bot Connector may deliver an activity twice; only the first is acted on."""
        if not activity.id:
            return True
        conversation = hashlib.sha256(str(activity.conversation.id).encode()).hexdigest()[:24]
        event_id = f"{conversation}:{activity.id}"[:128]
        first = await self.router.first_delivery("teams", translate.tenant_id(activity), event_id)
        if not first:
            log.info("teams.activity_duplicate", activity_id=activity.id)
        return first

    async def _card_submit(
        self, turn_context: TurnContext, actor: Actor, data: dict[str, Any]
    ) -> None:
        activity = turn_context.activity
        form = await self._shown_form(activity, actor, data)
        if isinstance(data.get("form"), str) and form is None:
            await self._say(turn_context, EXPIRED_FORM)
            return
        try:
            parsed = submits.parse_submit(data, {form.form_id: form} if form else None)
        except submits.BadSubmit as bad:
            log.info("teams.submit_refused", reason=str(bad), user=actor.user_id)
            if form is not None:
                # A form stays open with what was wrong shown on it, as a field's error is;
                # nothing was handed to the router, so nothing was written.
                await self._show_form(
                    turn_context,
                    actor,
                    form,
                    replace=activity.reply_to_id,
                    errors={UNREADABLE: f"I couldn't read that: {bad}."},
                    values=_typed(data),
                )
                return
            await self._say(turn_context, f"I couldn't read that: {bad}.")
            return
        if isinstance(parsed, submits.Pressed):
            reply = await self.router.dispatch(
                translate.action(activity, actor, parsed.action, parsed.value)
            )
            await self._answer(turn_context, actor, reply)
            return
        assert form is not None
        reply = await self.router.dispatch(
            translate.submission(activity, actor, parsed.form_id, parsed.values, parsed.state)
        )
        card_id = activity.reply_to_id
        if reply.errors:
            await self._show_form(
                turn_context,
                actor,
                form,
                replace=card_id,
                errors=reply.errors,
                values=parsed.values,
            )
        elif reply.form is not None:
            await self._show_form(turn_context, actor, reply.form, replace=card_id)
        elif card_id:
            # The form is done: it turns into a note, so it cannot be sent twice.
            done = notice(f"✓ {form.title} — sent.")
            await self._reply(
                turn_context, cards.message_card(done), markdown.summary(done), replace=card_id
            )
        if reply.message is not None:
            await self._reply(turn_context, *await self._drawn(activity, reply.message))

    async def _drawn(self, activity: Activity, message: Message) -> tuple[dict[str, Any], str]:
        """The card and notification text of an answer, people shown by their names."""
        return await self.sender.drawn(translate.tenant_id(activity), message)

    async def _shown_form(
        self, activity: Activity, actor: Actor, data: dict[str, Any]
    ) -> Form | None:
        form_id, state = data.get("form"), data.get("state", "")
        if not isinstance(form_id, str) or not isinstance(state, str):
            return None
        async with self.router.sessions() as session:
            workspace_id = await self._workspace_id(session, translate.tenant_id(activity))
            return await references.shown_form(session, workspace_id, actor.user_id, form_id, state)

    async def _answer(self, turn_context: TurnContext, actor: Actor, reply: Reply) -> None:
        """What the router answered at once: a form to show, or a message for this person."""
        if reply.form is not None:
            await self._show_form(turn_context, actor, reply.form)
        if reply.message is not None:
            await self._reply(
                turn_context, *await self._drawn(turn_context.activity, reply.message)
            )

    async def _show_form(
        self,
        turn_context: TurnContext,
        actor: Actor,
        form: Form,
        *,
        replace: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, FormValue] | None = None,
    ) -> None:
        """A form as a card in the person's 1:1 chat: in place of the last one when re-shown."""
        card = await self._form_card(turn_context.activity, actor, form, errors, values)
        if translate.conversation_kind(turn_context.activity) == PERSONAL:
            await self._reply(turn_context, card, form.title, replace=replace)
            return
        # A form only its reader should see: it goes to their chat, and the channel hears
        # nothing about it.
        ordinal = _next_reply(turn_context)
        try:
            await self.sender.send_card(
                translate.tenant_id(turn_context.activity), actor.user_id, card, form.title
            )
        except (TransientError, RateLimited) as failed:
            await self._later(
                turn_context, ordinal, {"user": actor.user_id}, card, form.title, failed
            )

    async def _form_card(
        self,
        activity: Activity,
        actor: Actor,
        form: Form,
        errors: dict[str, str] | None,
        values: dict[str, FormValue] | None,
    ) -> dict[str, Any]:
        async with transaction(self.router.sessions) as session:
            workspace_id = await self._workspace_id(session, translate.tenant_id(activity))
            await references.remember_form(
                session, workspace_id, actor.user_id, form, self.router.clock.now()
            )
            channels = (
                await references.channels(session, workspace_id)
                if any(f.kind == "channel" for f in form.fields)
                else []
            )
        return cards.form_card(form, errors=errors, values=values, channels=channels)

    async def _reply(
        self,
        turn_context: TurnContext,
        card: dict[str, Any],
        text: str,
        *,
        replace: str | None = None,
    ) -> None:
        """Answer within this turn, counted against the conversation's limits; an answer the
        Connector cannot take now goes to the outbox instead."""
        activity = turn_context.activity
        conversation = str(activity.conversation.id)
        await self.limiter.record(conversation, translate.tenant_id(activity))
        ordinal = _next_reply(turn_context)
        try:
            if replace:
                await turn_context.update_activity(card_activity(card, text, activity_id=replace))
            else:
                await turn_context.send_activity(card_activity(card, text))
        except Exception as error:  # classify() re-raises what is not a failed call
            target = {"channel": conversation, **({"replace": replace} if replace else {})}
            await self._later(turn_context, ordinal, target, card, text, classify(error))

    async def _later(
        self,
        turn_context: TurnContext,
        ordinal: int,
        target: dict[str, Any],
        card: dict[str, Any],
        text: str,
        failed: DeliveryError,
    ) -> None:
        """A reply the Connector (or Entra ID, for its token) could not take during the turn:
        queued, so the outbox delivers it when Microsoft is back, and the turn still ends well.

        The key is the activity's and the reply's place in the turn: the same activity run
        again queues nothing twice.
        """
        activity = turn_context.activity
        tenant = translate.tenant_id(activity)
        described = {"tenant": tenant, "kind": str(activity.type), "error": str(failed)[:300]}
        if isinstance(failed, PermanentError):
            # The conversation refuses the bot for good (removed, blocked): no retry helps.
            log.warning("teams.reply_refused", **described)
            return
        conversation = hashlib.sha256(str(activity.conversation.id).encode()).hexdigest()[:24]
        turn = activity.id or uuid.uuid4().hex
        async with transaction(self.router.sessions) as session:
            workspace_id = await self._workspace_id(session, tenant)
            await outbox.enqueue(
                session,
                workspace_id=workspace_id,
                dedupe_key=f"teams:turn:{conversation}:{turn}:{ordinal}",
                kind=CARD,
                target=target,
                payload={"card": card, "text": text},
                now=self.router.clock.now(),
            )
        self.router.on_commit()
        log.warning("teams.reply_queued", **described)

    async def _say(self, turn_context: TurnContext, text: str) -> None:
        message = notice(text)
        await self._reply(turn_context, cards.message_card(message), markdown.summary(message))

    # -- invokes: the message extension's dialog, and an answer for every other one ----------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        """Every invoke gets a 200 in the shape Teams expects for it, never the SDK's 501."""
        name = str(turn_context.activity.name or "")
        if name == "composeExtension/fetchTask":
            return await self._fetch_task(turn_context)
        if name == "composeExtension/submitAction":
            return await self._submit_action(turn_context)
        log.info("teams.invoke_not_served", name=name[:100])
        if name == "adaptiveCard/action":
            # Flywheel's cards submit with Action.Submit; an Action.Execute is not one of its.
            return card_action_message(NOT_SERVED)
        if name in ("task/fetch", "task/submit"):
            return _dialog_message(NOT_SERVED)
        if name in ("config/fetch", "config/submit"):
            return config_message(NOT_SERVED)
        if name in SEARCHES:
            return no_results()
        # signin/verifyState, message/submitAction, handoff/action, file consent, tabs and
        # names not yet invented: acknowledged, with nothing to show.
        return _ok()

    async def _fetch_task(self, turn_context: TurnContext) -> InvokeResponse:
        """`Request content` on a message: the request form, prefilled, in a dialog."""
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        command = MESSAGE_ACTIONS.get(str(value.get("commandId") or ""))
        if command is None:
            return _dialog_message("That action isn't something I know any more.")
        actor = await self.profiles.actor(turn_context)
        reply = await self.router.dispatch(translate.from_message(activity, actor, command))
        if reply.form is not None:
            card = await self._form_card(activity, actor, reply.form, None, None)
            return _dialog(reply.form, card)
        if reply.message is None:
            return _dialog_message("Done.")
        return _dialog_message((await self._drawn(activity, reply.message))[1])

    async def _submit_action(self, turn_context: TurnContext) -> InvokeResponse:
        """The dialog's form submitted: errors keep it open; otherwise it closes."""
        activity = turn_context.activity
        if not await self._first_delivery(activity):
            # The same submit delivered again: the client still needs a task response.
            return _dialog_message(SUBMITTED)
        value = activity.value if isinstance(activity.value, dict) else {}
        data = value.get("data")
        if not isinstance(data, dict):
            return _dialog_message("I couldn't read that: the dialog sent no form data.")
        actor = await self.profiles.actor(turn_context)
        form = await self._shown_form(activity, actor, data)
        if form is None:
            return _dialog_message(EXPIRED_FORM)
        try:
            parsed = submits.parse_submit(data, {form.form_id: form})
        except submits.BadSubmit as bad:
            return _dialog_message(f"I couldn't read that: {bad}.")
        if not isinstance(parsed, submits.Submitted):
            return _dialog_message("I couldn't read that: the dialog sent a button, not a form.")
        reply = await self.router.dispatch(
            translate.submission(
                activity, actor, parsed.form_id, parsed.values, parsed.state, reply=False
            )
        )
        if reply.errors:
            card = await self._form_card(activity, actor, form, reply.errors, parsed.values)
            return _dialog(form, card)
        if reply.form is not None:
            return _dialog(
                reply.form, await self._form_card(activity, actor, reply.form, None, None)
            )
        if reply.message is not None:
            return _dialog_message((await self._drawn(activity, reply.message))[1])
        # Teams reports an empty answer as "Unable to reach app": a short confirmation.
        return _dialog_message(f"✓ {form.title} — sent.")


def _typed(data: dict[str, Any]) -> dict[str, FormValue] | None:
    """What a refused submit held, to show again; choices not on the form are dropped when
    the card is drawn, so only what the person could have typed survives."""
    try:
        parsed = submits.parse_submit(data)
    except submits.BadSubmit:
        return None
    return parsed.values if isinstance(parsed, submits.Submitted) else None


def _next_reply(turn_context: TurnContext) -> int:
    """This reply's place among the turn's replies, from 0."""
    ordinal = int(turn_context.turn_state.get(REPLIES, 0))
    turn_context.turn_state[REPLIES] = ordinal + 1
    return ordinal


def _removed(activity: Activity) -> bool:
    """The app was uninstalled here, or the bot removed from the conversation."""
    if activity.type == ActivityTypes.installation_update:
        return str(activity.action or "").startswith("remove")
    if activity.type == ActivityTypes.conversation_update and activity.members_removed:
        bot = activity.recipient.id if activity.recipient else None
        return any(member.id == bot for member in activity.members_removed)
    return False
