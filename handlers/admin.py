"""`admin`: workspace settings, for admins only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from handlers import workspace_settings
from handlers.context import Context, dm
from handlers.errors import FormInvalid, NotAllowed
from handlers.interactions import NO_REPLY, Command, Reply, Submission
from handlers.members import is_admin
from handlers.messages import ChannelField, Form, FormValue, Message, TextField, UserField

if TYPE_CHECKING:
    from handlers.router import Router

FORM_ID = "admin_form"


def _require_admin(ctx: Context) -> None:
    if not is_admin(ctx.member, ctx.config):
        raise NotAllowed(
            "Only workspace admins can change Flywheel's settings. "
            "If something should change, a workspace admin can do it with `admin`."
        )


async def open_form(ctx: Context, command: Command) -> Reply:
    _require_admin(ctx)
    current = workspace_settings.load(ctx.workspace)
    return Reply(
        form=Form(
            form_id=FORM_ID,
            title="Flywheel settings",
            submit_label="Save",
            fields=(
                UserField(
                    name="reviewers",
                    label="Reviewers",
                    multi=True,
                    initial=tuple(current.reviewers),
                    optional=True,
                    hint="People who approve drafts before they are shared.",
                ),
                ChannelField(
                    name="review_channel",
                    label="Review channel",
                    initial=(current.review_channel,) if current.review_channel else (),
                    optional=True,
                ),
                ChannelField(
                    name="share_channels",
                    label="Share channels",
                    multi=True,
                    initial=tuple(current.share_channels),
                    optional=True,
                ),
                ChannelField(
                    name="digest_channels",
                    label="Digest channels",
                    multi=True,
                    initial=tuple(current.digest_channels),
                    optional=True,
                ),
                ChannelField(
                    name="escalation_channel",
                    label="Escalation channel",
                    initial=(current.escalation_channel,) if current.escalation_channel else (),
                    optional=True,
                ),
                TextField(
                    name="timezone",
                    label="Workspace time zone",
                    initial=current.timezone,
                    placeholder="Europe/Paris",
                    max_length=64,
                ),
            ),
        )
    )


async def submit(ctx: Context, submission: Submission) -> Reply:
    _require_admin(ctx)
    values = submission.values
    current = workspace_settings.load(ctx.workspace)
    try:
        updated = current.model_copy(
            update={
                "reviewers": _many(values.get("reviewers")),
                "review_channel": _one(values.get("review_channel")),
                "share_channels": _many(values.get("share_channels")),
                "digest_channels": _many(values.get("digest_channels")),
                "escalation_channel": _one(values.get("escalation_channel")),
                "timezone": (_one(values.get("timezone")) or "UTC").strip(),
            }
        )
        workspace_settings.WorkspaceSettings.model_validate(updated.model_dump())
    except ValidationError as error:
        raise FormInvalid(
            {str(e["loc"][0]): e["msg"].removeprefix("Value error, ") for e in error.errors()}
        ) from None
    workspace_settings.save(ctx.workspace, updated)
    ctx.session.add(ctx.workspace)
    await ctx.send(
        dm(ctx.member.user_id),
        Message(text="Flywheel settings saved."),
        key=f"settings:{ctx.member.id}:{ctx.now.isoformat()}",
    )
    return NO_REPLY


def _many(value: FormValue) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, tuple) else tuple(value.replace(",", " ").split())
    return list(dict.fromkeys(v for v in items if v))


def _one(value: FormValue) -> str | None:
    items = (
        _many(value)
        if isinstance(value, tuple)
        else ([value.strip()] if value and value.strip() else [])
    )
    return items[0] if items else None


def register(router: Router) -> None:
    router.command(
        "admin", usage="admin", summary="workspace settings (admins only): reviewers and channels"
    )(open_form)
    router.form(FORM_ID)(submit)
