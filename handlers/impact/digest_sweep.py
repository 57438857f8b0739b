"""The digest sweep: each channel's weekly digest posted exactly once, and what became of it.

Exactly once. The worker's sweep (every minute, per workspace) writes a `Digest` row per
channel and week with a unique key, and the channel's message as an outbox row with a
unique dedupe key, in one transaction: two workers, a restart mid-send or a catch-up after
downtime find the row and send nothing more. A scheduled time missed while the bot was down
is sent once, late, when it comes back — only the latest, never a backlog of stale weeks.

Afterwards. The sweep follows each queued digest's outbox row: sent, or refused for good —
then the workspace's admins hear once why (the bot is not in the channel, it was archived)
and the other channels are not affected.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import func, or_
from sqlmodel import col, select

from handlers.core import workspace_settings
from handlers.core.context import Scope, channel, dm
from handlers.core.markup import channel_mention, md
from handlers.core.messages import notice
from handlers.core.ports import AI, NO_AI
from handlers.impact import notes
from handlers.impact.digest_figures import build
from handlers.impact.digest_message import chart_url, message, page_url
from handlers.impact.digest_schedule import last_scheduled, week_of, weeks_for
from handlers.impact.digest_status import DigestStatus, move_digest
from storage import outbox
from storage.models import Digest, Member, OutboxMessage, random_code
from storage.upsert import insert_ignore

log = structlog.get_logger(__name__)

NOTES = "@notes"  # the Digest "channel" of the week's personal notes

# What a platform's refusal means, for the admins' message (Slack's error codes; others
# fall back to the platform's own words).
REFUSALS = {
    "not_in_channel": "I'm not a member of that channel. Invite me with `/invite @Flywheel`",
    "is_archived": "the channel was archived",
    "channel_not_found": "I can't find that channel (deleted, or private without me)",
}


def _key(week: str, where: str) -> str:
    return f"digest:{week}:{where}"


async def sweep(scope: Scope, ai: AI = NO_AI) -> int:
    """Send what is due: each channel's digest and the week's personal notes, once each.

    Also follows digests already queued, telling admins once about a channel that refused.
    Returns how many digests were queued.
    """
    await follow_up(scope)
    settings = workspace_settings.load(scope.workspace)
    if not settings.digest_channels:
        return 0
    scheduled = last_scheduled(settings, scope.now)
    if settings.digests_from and scheduled < datetime.fromisoformat(settings.digests_from):
        return 0
    week = week_of(settings, scheduled)
    wanted = [*dict.fromkeys(settings.digest_channels), NOTES]
    done = set(
        (
            await scope.session.exec(
                select(Digest.channel).where(
                    Digest.workspace_id == scope.workspace_id,
                    Digest.week == week,
                    col(Digest.channel).in_(wanted),
                )
            )
        ).all()
    )
    if all(where in done for where in wanted):
        return 0
    figures = await build(scope.session, scope.workspace_id, settings, scheduled)
    queued = 0
    for where in wanted:
        if where in done:
            continue
        chart_code, page_code = random_code(), random_code()
        inserted = await insert_ignore(
            scope.session,
            Digest.__table__,  # type: ignore[attr-defined]
            {
                "workspace_id": scope.workspace_id,
                "channel": where,
                "week": week,
                # The notes are queued here and now, each with its own outbox row.
                "status": DigestStatus.SENT if where == NOTES else DigestStatus.QUEUED,
                "chart_code": chart_code,
                "page_code": page_code,
                "figures": figures.model_dump(mode="json"),
                "created_at": scope.now,
            },
            ("workspace_id", "channel", "week"),
        )
        if not inserted:
            continue  # another worker got there first
        if where == NOTES:
            sent = await notes.send_all(scope, settings, weeks_for(settings, scheduled)[-1], week)
            log.info("digest.notes_queued", workspace=scope.workspace.external_id, notes=sent)
            continue
        base = scope.config.public_base_url
        quiet = figures.quiet
        await scope.send(
            channel(where),
            message(
                figures,
                chart_url=None if quiet else chart_url(base, chart_code),
                page_url=page_url(base, page_code),
            ),
            key=_key(week, where),
            ref_key=_key(week, where),
        )
        queued += 1
        log.info("digest.queued", workspace=scope.workspace.external_id, channel=where, week=week)
    return queued


async def follow_up(scope: Scope) -> None:
    """Mark queued digests sent or failed from their outbox rows; tell admins of a refusal."""
    waiting = (
        await scope.session.exec(
            select(Digest).where(
                Digest.workspace_id == scope.workspace_id, Digest.status == DigestStatus.QUEUED
            )
        )
    ).all()
    if not waiting:
        return
    keys = {f"{scope.workspace_id}:{_key(d.week, d.channel)}": d for d in waiting}
    rows = {
        row.dedupe_key: row
        for row in (
            await scope.session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).in_(list(keys)))
            )
        ).all()
    }
    for key, digest in keys.items():
        row = rows.get(key)
        if row is not None and row.status in (outbox.PENDING, outbox.SENDING):
            continue
        # Sent rows are forgotten after a while; a missing row was sent.
        failed = row is not None and row.status in (outbox.FAILED, outbox.CANCELLED)
        moved = await move_digest(
            scope.session, digest, DigestStatus.FAILED if failed else DigestStatus.SENT
        )
        if failed and moved:
            assert row is not None
            await _tell_admins(scope, digest, row.last_error or "")


def refusal(error: str) -> str:
    """Why a channel refused the digest, in words an admin can act on."""
    for code, meaning in REFUSALS.items():
        if code in error:
            return meaning
    if " — " in error:
        # Senders put their own explanation after a dash: "… 403 BotNotInConversationRoster
        # — Flywheel is no longer in that conversation: add the app to the team again".
        return error.split(" — ", 1)[1][:300]
    return f"the platform said: {error[:300] or 'no reason given'}"


async def admins(scope: Scope) -> list[Member]:
    """The workspace's admins this bot knows: platform admins and FLYWHEEL_ADMINS."""
    configured = list(scope.config.admins_in(scope.workspace))
    query = select(Member).where(
        Member.workspace_id == scope.workspace_id,
        col(Member.is_bot).is_(False),
        or_(
            col(Member.is_platform_admin).is_(True),
            col(Member.user_id).in_(configured),
            func.lower(col(Member.email)).in_(configured),
        ),
    )
    return list((await scope.session.exec(query.order_by(col(Member.id)))).all())


async def _tell_admins(scope: Scope, digest: Digest, error: str) -> None:
    why = refusal(error)
    text = md(
        "I couldn't post the weekly digest ({}) in {}: {}. "
        "The other digest channels got theirs; choose the channels with `admin`.",
        digest.week,
        channel_mention(digest.channel),
        why,
    )
    told = notice(text, "I'll try that channel again next week.")
    people = await admins(scope)
    for person in people:
        await scope.send(
            dm(person.user_id),
            told,
            key=f"{_key(digest.week, digest.channel)}:refused:{person.id}",
            unprompted=True,
        )
    settings = workspace_settings.load(scope.workspace)
    if not people and settings.escalation_channel and settings.escalation_channel != digest.channel:
        await scope.send(
            channel(settings.escalation_channel),
            told,
            key=f"{_key(digest.week, digest.channel)}:refused",
        )
    log.warning(
        "digest.refused",
        workspace=scope.workspace.external_id,
        channel=digest.channel,
        week=digest.week,
        error=error[:200],
        admins=len(people),
    )
