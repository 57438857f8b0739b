"""`admin`: workspace settings, for admins only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from handlers.admin import setup
from handlers.content import feeds
from handlers.core import actions, workspace_settings
from handlers.core.context import Context, dm
from handlers.core.errors import FormInvalid, NotAllowed
from handlers.core.interactions import NO_REPLY, Action, Command, Reply, Submission
from handlers.core.markup import link, md
from handlers.core.members import is_admin
from handlers.core.messages import (
    ChannelField,
    ContextLine,
    Form,
    FormField,
    FormValue,
    Option,
    SelectField,
    TextField,
    UserField,
    notice,
)
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.impact import digest_settings

if TYPE_CHECKING:
    from handlers.core.router import Router

FORM_ID = "admin_form"
NUMBERS = (
    "experts_per_round",
    "ping_timeout_hours",
    "reminder_lead_days",
    "weekly_ping_cap",
    "max_length",
    "share_window_hours",
    "share_daily_cap",
    "feed_poll_minutes",
)
YES_NO = (Option(value="yes", label="Yes"), Option(value="no", label="No"))


def _require_admin(ctx: Context) -> None:
    if not is_admin(ctx.member, ctx.config, ctx.workspace):
        raise NotAllowed(
            "Only workspace admins can change Flywheel's settings. "
            "If something should change, a workspace admin can do it with `admin`."
        )


def _one_or_none(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def settings_form(current: WorkspaceSettings, program_url: str | None = None) -> Form:
    """The admin form, showing the current settings (and where the program page is)."""
    fields: tuple[FormField, ...] = (
        UserField(
            name="reviewers",
            label="Reviewers",
            multi=True,
            optional=True,
            initial=tuple(current.reviewers),
            hint="People who approve drafts before they are shared.",
        ),
        ChannelField(
            name="review_channel",
            label="Review channel",
            optional=True,
            initial=_one_or_none(current.review_channel),
        ),
        ChannelField(
            name="share_channels",
            label="Share channels",
            multi=True,
            optional=True,
            initial=tuple(current.share_channels),
        ),
        ChannelField(
            name="digest_channels",
            label="Digest channels",
            multi=True,
            optional=True,
            initial=tuple(current.digest_channels),
        ),
        ChannelField(
            name="escalation_channel",
            label="Escalation channel",
            optional=True,
            initial=_one_or_none(current.escalation_channel),
            hint="Where requests that no expert took are reported.",
        ),
        TextField(
            name="timezone",
            label="Workspace time zone",
            initial=current.timezone,
            placeholder="Europe/Paris",
            max_length=64,
        ),
        TextField(
            name="experts_per_round",
            label="Experts asked per round",
            initial=str(current.experts_per_round),
            max_length=2,
            hint="1 to 10.",
        ),
        TextField(
            name="ping_timeout_hours",
            label="Hours an expert has to answer",
            initial=str(current.ping_timeout_hours),
            max_length=3,
            hint="Working hours, 1 to 120; then the next experts are asked.",
        ),
        TextField(
            name="reminder_lead_days",
            label="Reminder, days before the due date",
            initial=str(current.reminder_lead_days),
            max_length=2,
            hint="0 to 14.",
        ),
        TextField(
            name="weekly_ping_cap",
            label="Most requests per expert per week",
            initial=str(current.weekly_ping_cap),
            max_length=2,
            hint="1 to 50.",
        ),
        TextField(
            name="quiet_hours_start",
            label="Quiet hours start",
            initial=current.quiet_hours_start,
            max_length=5,
            hint="In each person's own time zone.",
        ),
        TextField(
            name="quiet_hours_end",
            label="Quiet hours end",
            initial=current.quiet_hours_end,
            max_length=5,
        ),
        TextField(
            name="banned_phrases",
            label="Banned phrases",
            initial="\n".join(current.banned_phrases),
            multiline=True,
            optional=True,
            hint="One per line; drafts containing one go back to their author before review.",
        ),
        TextField(
            name="required_disclosure",
            label="Required disclosure line",
            initial=current.required_disclosure,
            optional=True,
            max_length=300,
            placeholder="I work at Acme.",
        ),
        TextField(
            name="max_length",
            label="Longest post (characters)",
            initial=str(current.max_length or ""),
            optional=True,
            max_length=4,
            hint="Title and body together, 100 to 3150; empty for no limit.",
        ),
        TextField(
            name="allowed_domains",
            label="Links allowed only to",
            initial=", ".join(current.allowed_domains),
            optional=True,
            hint="Comma-separated domains (subdomains included); empty allows any link.",
        ),
        SelectField(
            name="quiet_weekends",
            label="Quiet at weekends?",
            options=YES_NO,
            initial=("yes" if current.quiet_weekends else "no",),
        ),
        TextField(
            name="share_window_hours",
            label="Spread share suggestions over (working hours)",
            initial=str(current.share_window_hours),
            max_length=2,
            hint="0 to 72: colleagues get a new post at different times, not all at once.",
        ),
        TextField(
            name="share_daily_cap",
            label="Most share suggestions per person per day",
            initial=str(current.share_daily_cap),
            max_length=2,
            hint="1 to 20; more wait for the next working day.",
        ),
        TextField(
            name="feed_poll_minutes",
            label="Read feeds every (minutes)",
            initial=str(current.feed_poll_minutes),
            max_length=4,
            hint="5 to 1440. Feeds themselves are managed with `feeds`.",
        ),
        SelectField(
            name="linkedin_share",
            label="LinkedIn button",
            options=(
                Option(value="composer", label="Opens the composer with the caption"),
                Option(value="offsite", label="Shares the link only (LinkedIn's documented way)"),
            ),
            initial=(current.linkedin_share,),
        ),
    )
    fields += digest_settings.form_fields(current)
    intro = (
        (
            ContextLine(
                text=md(
                    "The program over time, with CSV downloads: {}",
                    link(program_url, "open the program page"),
                )
            ),
        )
        if program_url
        else ()
    )
    return Form(
        form_id=FORM_ID, title="Flywheel settings", submit_label="Save", intro=intro, fields=fields
    )


async def open_form(ctx: Context, command: Command | Action) -> Reply:
    _require_admin(ctx)
    if isinstance(command, Command) and command.text.strip().lower() == "feeds":
        return await feeds.overview(ctx, command)
    program = ctx.config.public_base_url.rstrip("/") + "/program"
    form = settings_form(workspace_settings.load(ctx.workspace), program)
    missing = tuple(setup.checklist(ctx.workspace, with_button=False))
    return Reply(form=form.model_copy(update={"intro": missing + form.intro}))


async def submit(ctx: Context, submission: Submission) -> Reply:
    _require_admin(ctx)
    values = submission.values
    current = workspace_settings.load(ctx.workspace)
    update: dict[str, Any] = {
        "reviewers": _many(values.get("reviewers")),
        "review_channel": _one(values.get("review_channel")),
        "share_channels": _many(values.get("share_channels")),
        "digest_channels": _many(values.get("digest_channels")),
        "escalation_channel": _one(values.get("escalation_channel")),
        "timezone": _one(values.get("timezone")) or "UTC",
        "quiet_hours_start": _one(values.get("quiet_hours_start")) or current.quiet_hours_start,
        "quiet_hours_end": _one(values.get("quiet_hours_end")) or current.quiet_hours_end,
        "quiet_weekends": (_one(values.get("quiet_weekends")) or "yes") == "yes",
        "banned_phrases": _lines(values.get("banned_phrases")),
        "required_disclosure": _one(values.get("required_disclosure")) or "",
        "allowed_domains": _many(values.get("allowed_domains")),
        "max_length": None,
        "linkedin_share": _one(values.get("linkedin_share")) or current.linkedin_share,
    }
    errors: dict[str, str] = {}
    for name in NUMBERS:
        raw = _one(values.get(name))
        if raw is None:
            continue
        try:
            update[name] = int(raw)
        except ValueError:
            errors[name] = "Use a whole number."
    errors.update(digest_settings.apply(values, current, update, ctx.now))
    if errors:
        raise FormInvalid(errors)
    try:
        updated = WorkspaceSettings.model_validate({**current.model_dump(), **update})
    except ValidationError as error:
        raise FormInvalid(_field_errors(error)) from None
    workspace_settings.save(ctx.workspace, updated)
    ctx.session.add(ctx.workspace)
    await ctx.send(
        dm(ctx.member.user_id),
        notice("Flywheel settings saved."),
        key=f"settings:{ctx.member.id}:{ctx.now.isoformat()}",
    )
    return NO_REPLY


def _field_errors(error: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "quiet_hours_start"
        errors.setdefault(name, str(problem["msg"]).removeprefix("Value error, "))
    return errors


def _many(value: FormValue) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, tuple) else tuple(value.replace(",", " ").split())
    return list(dict.fromkeys(v for v in items if v))


def _lines(value: FormValue) -> list[str]:
    text = "\n".join(value) if isinstance(value, tuple) else (value or "")
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def _one(value: FormValue) -> str | None:
    if isinstance(value, tuple):
        return value[0] if value else None
    return value.strip() or None if value else None


def register(router: Router) -> None:
    router.command(
        "admin",
        usage="admin",
        summary="workspace settings (admins only): reviewers, channels, routing",
    )(open_form)
    router.form(FORM_ID)(submit)
    router.action(actions.ADMIN_OPEN)(open_form)
