"""AI help with a draft: queued by the expert's button, done by the worker, applied after.

`draft_ai` queues a task (or, without OpenAI, fills the draft from a template at once);
`run_ai_tasks`, a scheduled job, does each task in three steps (claim, call the model,
apply) so that no transaction is held open while the model thinks, and messages the
expert when the draft is ready or the model could not help.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Config, Context, Scope, dm
from handlers.core.errors import InvalidTransition
from handlers.core.interactions import Action, Reply
from handlers.core.markup import md
from handlers.core.messages import Button, Buttons, ContextLine, Message, Section, notice
from handlers.core.ports import AI, Clock
from handlers.core.wording import clip
from handlers.drafting.ai import (
    BODY_MAX,
    TITLE_MAX,
    AiUnavailable,
    DraftInput,
    DraftSuggestion,
    suggest_draft,
    template_draft,
)
from handlers.drafting.draft_status import EDITABLE, require_editable
from handlers.drafting.form import (
    CAPTION_MAX,
    CAPTIONS,
    draft_form,
    id_from,
    request_of,
    working_draft,
)
from storage.db import SessionFactory, transaction
from storage.models import AiTask, ContentRequest, Draft, ExpertProfile, Member, Workspace
from storage.upsert import on_postgres

if TYPE_CHECKING:
    from handlers.core.router import Router

NOTES_MAX = 2000
# An AI task still "running" after this long was abandoned by a crashed worker.
AI_LEASE = timedelta(minutes=10)


class AiTaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# A task left running by a crashed worker is claimed again once its lease is over.
ALLOWED: dict[AiTaskStatus, frozenset[AiTaskStatus]] = {
    AiTaskStatus.PENDING: frozenset({AiTaskStatus.RUNNING}),
    AiTaskStatus.RUNNING: frozenset({AiTaskStatus.RUNNING, AiTaskStatus.DONE, AiTaskStatus.FAILED}),
    AiTaskStatus.DONE: frozenset(),
    AiTaskStatus.FAILED: frozenset(),
}
# A draft with one of these has its AI help on the way: asking again queues nothing.
UNFINISHED = [AiTaskStatus.PENDING, AiTaskStatus.RUNNING]


def move_task(task: AiTask, target: AiTaskStatus) -> None:
    """Move the task to `target`, or refuse if that move is not allowed."""
    current = AiTaskStatus(task.status)
    if target not in ALLOWED[current]:
        raise InvalidTransition(f"This AI task is already {current.value}.")
    task.status = target


def _input(
    request: ContentRequest,
    requester: Member,
    expert: Member,
    profile: ExpertProfile | None,
    notes: str,
) -> DraftInput:
    return DraftInput(
        topic=request.topic,
        context=request.context,
        audience=request.audience,
        tags=tuple(request.tags),
        requester_name=requester.name or requester.user_id,
        expert_name=expert.name or expert.user_id,
        expert_bio=profile.bio if profile else "",
        notes=notes,
    )


def _apply(draft: Draft, suggestion: DraftSuggestion) -> None:
    draft.title, draft.body = suggestion.title[:TITLE_MAX], suggestion.body[:BODY_MAX]
    draft.captions = [c[:CAPTION_MAX] for c in suggestion.captions][:CAPTIONS]
    draft.ai_assisted = draft.ai_assisted or suggestion.ai_assisted
    draft.ai_label = suggestion.label


async def ask_ai(ctx: Context, action: Action) -> Reply:
    """`draft_ai`: an AI first draft (queued for the worker), or a template without OpenAI."""
    request = await request_of(ctx, id_from(action.value, "request"))
    draft = await working_draft(ctx, request)
    require_editable(draft)
    if not ctx.config.ai_enabled:
        requester = await ctx.session.get(Member, request.requester_id)
        assert requester is not None
        profile = (
            await ctx.session.exec(
                select(ExpertProfile).where(ExpertProfile.member_id == ctx.member_id)
            )
        ).first()
        _apply(draft, template_draft(_input(request, requester, ctx.member, profile, "")))
        draft.updated_at = ctx.now
        ctx.session.add(draft)
        return Reply(form=await draft_form(ctx, draft, request))
    pending = (
        await ctx.session.exec(
            select(AiTask).where(AiTask.draft_id == draft.id, col(AiTask.status).in_(UNFINISHED))
        )
    ).first()
    if pending is None:
        ctx.session.add(
            AiTask(
                workspace_id=ctx.workspace_id,
                draft_id=draft.id or 0,
                requested_by_id=ctx.member_id,
                notes=clip(draft.body, NOTES_MAX) if draft.body else "",
                created_at=ctx.now,
            )
        )
    return Reply.say(
        "✨ Drafting an outline, a first draft and three captions — "
        "I'll message you in a minute or two."
    )


async def run_ai_tasks(
    sessions: SessionFactory, clock: Clock, config: Config, ai: AI, limit: int = 5
) -> int:
    """Do pending AI tasks, each in three steps — claim, call the model, apply — so that no
    transaction is held open while the model thinks. Returns how many were finished."""
    llm = ai.llm
    if llm is None:
        return 0
    finished = 0
    for _ in range(limit):
        claimed = await _claim_task(sessions, clock)
        if claimed is None:
            break
        task_id, data = claimed
        try:
            suggestion: DraftSuggestion | AiUnavailable = await suggest_draft(llm, data)
        except AiUnavailable as error:
            suggestion = error
        await _finish_task(sessions, clock, config, task_id, suggestion)
        finished += 1
    return finished


async def _claim_task(sessions: SessionFactory, clock: Clock) -> tuple[int, DraftInput] | None:
    now = clock.now()
    async with transaction(sessions) as session:
        query = (
            select(AiTask)
            .where(
                (col(AiTask.status) == AiTaskStatus.PENDING)
                | (
                    (col(AiTask.status) == AiTaskStatus.RUNNING)
                    & (col(AiTask.started_at) < now - AI_LEASE)
                )
            )
            .order_by(col(AiTask.id))
            .limit(1)
        )
        if on_postgres(session):
            query = query.with_for_update(skip_locked=True)
        task = (await session.exec(query)).first()
        if task is None:
            return None
        move_task(task, AiTaskStatus.RUNNING)
        task.started_at, task.attempts = now, task.attempts + 1
        session.add(task)
        draft = await session.get(Draft, task.draft_id)
        assert draft is not None
        request = await session.get(ContentRequest, draft.request_id)
        expert = await session.get(Member, draft.author_id)
        assert request is not None and expert is not None
        requester = await session.get(Member, request.requester_id)
        assert requester is not None
        profile = (
            await session.exec(select(ExpertProfile).where(ExpertProfile.member_id == expert.id))
        ).first()
        return task.id or 0, _input(request, requester, expert, profile, task.notes)


async def _finish_task(
    sessions: SessionFactory,
    clock: Clock,
    config: Config,
    task_id: int,
    outcome: DraftSuggestion | AiUnavailable,
) -> None:
    now = clock.now()
    async with transaction(sessions) as session:
        task = await session.get(AiTask, task_id)
        assert task is not None
        draft = await session.get(Draft, task.draft_id)
        workspace = await session.get(Workspace, task.workspace_id)
        assert draft is not None and workspace is not None
        expert = await session.get(Member, draft.author_id)
        assert expert is not None
        scope = Scope(session, clock, config, workspace)
        task.finished_at = now
        if isinstance(outcome, AiUnavailable) or draft.status not in EDITABLE:
            move_task(task, AiTaskStatus.FAILED)
            task.error = (
                outcome.message[:500]
                if isinstance(outcome, AiUnavailable)
                else "draft no longer editable"
            )
            session.add(task)
            if isinstance(outcome, AiUnavailable):
                await scope.send(
                    dm(expert.user_id),
                    notice(f"AI help didn't work this time: {outcome.message}"),
                    key=f"ai:{task.id}:failed",
                    unprompted=True,
                )
            return
        _apply(draft, outcome)
        draft.updated_at = now
        move_task(task, AiTaskStatus.DONE)
        session.add_all([draft, task])
        outline = "\n".join(f"• {line}" for line in outcome.outline)
        await scope.send(
            dm(expert.user_id),
            Message(
                text=f"Your AI first draft is ready: {draft.title}",
                blocks=(
                    Section(text=md("✨ Your first draft is ready: *{}*", draft.title)),
                    Section(text=md("*Outline*\n{}", clip(outline, 2000))),
                    ContextLine(
                        text=f"{outcome.label}. Edit it, make it yours, then submit it for review."
                    ),
                    Buttons(
                        buttons=(
                            Button(
                                label="Edit draft",
                                action=actions.DRAFT_OPEN,
                                value=str(draft.request_id),
                                style="primary",
                            ),
                            Button(
                                label="Submit for review",
                                action=actions.DRAFT_SUBMIT,
                                value=str(draft.id),
                            ),
                        )
                    ),
                ),
            ),
            key=f"ai:{task.id}:done",
            unprompted=True,
        )


def register(router: Router) -> None:
    router.action(actions.DRAFT_AI)(ask_ai)
