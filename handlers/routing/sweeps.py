"""Who is asked next, and when: the routing sweep of each workspace.

`sweep` (scheduled per workspace) expires pings nobody answered, pings the next round of
the best experts for every open request nobody is asked about (and declines a request,
honestly, when nobody is left), and reminds assignees before a due date. Running it
twice sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Integer, and_, exists, func, update
from sqlmodel import col, select

from handlers.core import actions, workspace_settings
from handlers.core.context import Scope, channel, dm
from handlers.core.lifecycle import Status, move
from handlers.core.markup import md
from handlers.core.members import mention
from handlers.core.messages import Button, Buttons, ContextLine, Message, Section
from handlers.core.ports import AI, NO_AI, Embedder
from handlers.core.quiet_hours import next_allowed, zone
from handlers.core.wording import their_zone
from handlers.requests import demand
from handlers.routing.matching import Candidate, ExpertLoad
from handlers.routing.nominations import anyone_else_is_expert
from handlers.routing.ping_status import ANSWERED, PingStatus, sources
from handlers.routing.pings import member_of, ping
from handlers.routing.ranking import rank_experts
from storage.models import ContentRequest, Ping
from storage.upsert import on_postgres

SWEEP_BATCH = 100


async def loads(scope: Scope) -> dict[int, ExpertLoad]:
    """Per expert: open assignments, pings in the last 7 days, answered and ignored pings."""
    session, workspace_id = scope.session, scope.workspace_id
    assigned = dict(
        (
            await session.exec(
                select(ContentRequest.assignee_id, func.count())
                .where(
                    ContentRequest.workspace_id == workspace_id,
                    col(ContentRequest.assignee_id).is_not(None),
                    col(ContentRequest.status).in_(
                        [Status.CLAIMED, Status.IN_REVIEW, Status.CHANGES_REQUESTED]
                    ),
                )
                .group_by(col(ContentRequest.assignee_id))
            )
        ).all()
    )
    week_ago = scope.now - timedelta(days=7)
    answered = func.sum(func.cast(col(Ping.status).in_(ANSWERED), Integer))
    ignored = func.sum(func.cast(col(Ping.status) == PingStatus.EXPIRED, Integer))
    recent = func.sum(func.cast(col(Ping.created_at) >= week_ago, Integer))
    history = (
        await session.exec(
            select(Ping.member_id, recent, answered, ignored)
            .where(Ping.workspace_id == workspace_id)
            .group_by(col(Ping.member_id))
        )
    ).all()
    result: dict[int, ExpertLoad] = {}
    for member_id, n_recent, n_answered, n_ignored in history:
        result[member_id] = ExpertLoad(
            open_assignments=int(assigned.get(member_id, 0)),
            pings_this_week=int(n_recent or 0),
            answered=int(n_answered or 0),
            ignored=int(n_ignored or 0),
        )
    for assignee, count in assigned.items():
        if assignee is not None and assignee not in result:
            result[assignee] = ExpertLoad(open_assignments=int(count))
    return result


async def _pinged_members(scope: Scope, request_id: int) -> set[int]:
    query = select(Ping.member_id).where(
        Ping.workspace_id == scope.workspace_id, Ping.request_id == request_id
    )
    return set((await scope.session.exec(query)).all())


async def route(scope: Scope, request: ContentRequest, *, embedder: Embedder | None) -> int:
    """Ping the next round of experts for an open request; decline it when nobody is left."""
    settings = workspace_settings.load(scope.workspace)
    asked = await _pinged_members(scope, request.id or 0)
    today = scope.now.astimezone(zone(settings.timezone)).date()
    query = " ".join(
        filter(None, [request.topic, request.context, request.audience, " ".join(request.tags)])
    )
    candidates: list[Candidate] = await rank_experts(
        scope.session,
        scope.workspace_id,
        query,
        loads=await loads(scope),
        today=today,
        weekly_cap=settings.weekly_ping_cap,
        exclude={request.requester_id, *asked},
        embedder=embedder,
        limit=settings.experts_per_round,
        now=scope.now,
    )
    round_ = 1 + int(
        (
            await scope.session.exec(
                select(func.coalesce(func.max(Ping.round), 0)).where(Ping.request_id == request.id)
            )
        ).one()
    )
    pinged = 0
    for candidate in candidates:
        member = await member_of(scope, candidate.member_id)
        if await ping(scope, request, member, round_=round_, reasons=candidate.reasons):
            pinged += 1
    if pinged == 0:
        await _decline_unmet(scope, request)
    return pinged


async def _decline_unmet(scope: Scope, request: ContentRequest) -> None:
    """No expert left: say so honestly, and keep the request visible as unmet demand."""
    if not await move(scope.session, request, Status.DECLINED, scope.now):
        return
    requester = await member_of(scope, request.requester_id)
    await scope.send(
        dm(requester.user_id),
        await _unmet_message(scope, request),
        key=f"request:{request.id}:declined",
        unprompted=True,
    )
    settings = workspace_settings.load(scope.workspace)
    if settings.escalation_channel:
        votes = (await demand.vote_counts(scope, [request.id or 0])).get(request.id or 0, 0)
        await scope.send(
            channel(settings.escalation_channel),
            Message(
                text=f"Unmet demand: {request.topic}",
                blocks=(
                    Section(
                        text=md(
                            "*Unmet demand:* {}\nasked by {} · {}",
                            request.topic,
                            mention(requester),
                            demand.wanted(votes),
                        )
                    ),
                    ContextLine(
                        text="No expert could take it. Know someone? "
                        "Ask them to add the topic with `expert`."
                    ),
                ),
            ),
            key=f"request:{request.id}:escalated",
        )


async def _unmet_message(scope: Scope, request: ContentRequest) -> Message:
    """The truth about why nobody took it, and what the requester can do about it."""
    if await anyone_else_is_expert(scope, request.requester_id):
        return Message(
            text=f"I couldn't find an expert for “{request.topic}” this time.",
            blocks=(
                Section(text=md("I couldn't find an expert for *{}* this time.", request.topic)),
                ContextLine(
                    text="Everyone I could ask was busy or passed. It stays on the board as "
                    "unmet demand, where admins and colleagues can see it — and a +1 from "
                    "others makes it more visible."
                ),
            ),
        )
    return Message(
        text=f"Nobody has an expert profile yet, so I couldn't ask anyone about “{request.topic}”.",
        blocks=(
            Section(
                text=md(
                    "Nobody has an expert profile yet, so I couldn't ask anyone about *{}*.",
                    request.topic,
                )
            ),
            ContextLine(
                text="Know who could answer? Suggest them: I'll invite them to say what they "
                "know, and offer them your request when they do."
            ),
            Buttons(
                buttons=(
                    Button(
                        label="Suggest a colleague",
                        action=actions.REQUEST_NOMINATE,
                        value=str(request.id),
                        style="primary",
                    ),
                )
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int = 0
    routed: int = 0
    reminded: int = 0


async def expire_pings(scope: Scope) -> int:
    """Pings nobody answered in time expire, which frees the request for the next round."""
    table = Ping.__table__  # type: ignore[attr-defined]
    result = await scope.session.exec(
        update(table)
        .where(
            table.c.workspace_id == scope.workspace_id,
            table.c.status.in_(sources(PingStatus.EXPIRED)),
            table.c.expires_at <= scope.now,
        )
        .values(status=PingStatus.EXPIRED)
    )
    return int(result.rowcount or 0)


async def route_open_requests(scope: Scope, *, embedder: Embedder | None) -> int:
    """Route every open request that has nobody currently asked."""
    waiting = ~exists().where(
        and_(col(Ping.request_id) == col(ContentRequest.id), col(Ping.status) == PingStatus.PENDING)
    )
    query = (
        select(ContentRequest)
        .where(
            ContentRequest.workspace_id == scope.workspace_id,
            ContentRequest.status == Status.OPEN,
            waiting,
        )
        .order_by(col(ContentRequest.id))
        .limit(SWEEP_BATCH)
    )
    if on_postgres(scope.session):
        # Another sweeper routing the same request at once skips it rather than pinging twice.
        query = query.with_for_update(skip_locked=True, of=ContentRequest)
    requests = (await scope.session.exec(query)).all()
    for request in requests:
        await route(scope, request, embedder=embedder)
    return len(requests)


async def remind_assignees(scope: Scope) -> int:
    """One reminder to the assignee, the configured number of days before the due date."""
    settings = workspace_settings.load(scope.workspace)
    query = select(ContentRequest).where(
        ContentRequest.workspace_id == scope.workspace_id,
        ContentRequest.status == Status.CLAIMED,
        col(ContentRequest.needed_by).is_not(None),
        col(ContentRequest.reminded_at).is_(None),
        col(ContentRequest.assignee_id).is_not(None),
    )
    reminded = 0
    for request in (await scope.session.exec(query)).all():
        assignee = await member_of(scope, request.assignee_id)
        tz = their_zone(assignee, scope.workspace)
        assert request.needed_by is not None
        if scope.now.astimezone(tz).date() < request.needed_by - timedelta(
            days=settings.reminder_lead_days
        ):
            continue
        table = ContentRequest.__table__  # type: ignore[attr-defined]
        marked = await scope.session.exec(
            update(table)
            .where(table.c.id == request.id, table.c.reminded_at.is_(None))
            .values(reminded_at=scope.now)
        )
        if not marked.rowcount:
            continue
        requester = await member_of(scope, request.requester_id)
        await scope.send(
            dm(assignee.user_id),
            Message(
                text=f"A gentle reminder: “{request.topic}” is due {request.needed_by:%a %d %b}.",
                blocks=(
                    Section(
                        text=md(
                            "A gentle reminder: *{}* is due {:%a %d %b}.",
                            request.topic,
                            request.needed_by,
                        )
                    ),
                    ContextLine(
                        text=md(
                            "{} is counting on it. If you can't make it, tell them — "
                            "that's fine too.",
                            mention(requester),
                        )
                    ),
                ),
            ),
            key=f"request:{request.id}:reminder",
            not_before=next_allowed(scope.now, tz, settings.working_hours()),
            unprompted=True,
        )
        reminded += 1
    return reminded


async def sweep(scope: Scope, ai: AI = NO_AI) -> SweepResult:
    """One pass over a workspace: expire, route, remind. Running it twice sends nothing twice."""
    expired = await expire_pings(scope)
    routed = await route_open_requests(scope, embedder=ai.embedder)
    reminded = await remind_assignees(scope)
    return SweepResult(expired, routed, reminded)
