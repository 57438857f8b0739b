"""Drafting, review and approval through the router: permissions, versions, audit, posts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.errors import InvalidTransition
from handlers.core.interactions import Action, Actor, Origin, Reply, Submission
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.drafting.ai_tasks import AiTaskStatus, move_task
from handlers.drafting.draft_status import DraftStatus, move_draft, require_editable
from storage.db import transaction
from storage.models import (
    AiTask,
    AuditEvent,
    ContentRequest,
    Draft,
    DraftVersion,
    OutboxMessage,
    Post,
    Workspace,
)
from testing.fakes.clock import FrozenClock

ACME = Origin(platform="console", workspace_id="acme")
GLOBEX = Origin(platform="console", workspace_id="globex")
ALICE = Actor("alice", "Alice", tz="Europe/London")
PIA = Actor("pia", "Pia", tz="Europe/Paris")
RITA = Actor("rita", "Rita", tz="Europe/London")  # a reviewer
SAM = Actor("sam", "Sam", tz="Europe/London")
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
GOOD = {
    "title": "Zero-downtime Oracle to PostgreSQL",
    "body": "We moved Globex without a minute of downtime. Here is how.\nI work at Acme.",
    "canonical_url": "https://blog.acme.com/zdm",
    "caption_1": "How we moved Globex off Oracle with zero downtime",
    "caption_2": "",
    "caption_3": "",
    "tags": "postgresql, oracle",
}


async def configure(app: Flywheel, origin: Origin = ACME, **changes: Any) -> None:
    async with transaction(app.sessions) as session:
        workspace = (
            await session.exec(
                select(Workspace).where(Workspace.external_id == origin.workspace_id)
            )
        ).one()
        workspace.settings = WorkspaceSettings.model_validate(
            {**workspace.settings, **changes}
        ).model_dump()
        session.add(workspace)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    clock.set(TUESDAY)
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    await flywheel.router.dispatch(
        Submission(
            ACME, PIA, "expert_form", {"other_topics": "postgresql, oracle", "capacity": "2"}
        )
    )
    await configure(
        flywheel,
        reviewers=["rita"],
        required_disclosure="I work at Acme.",
        banned_phrases=["guaranteed"],
    )
    reply = await flywheel.router.dispatch(
        Submission(
            ACME,
            ALICE,
            "request_form",
            {"topic": "How do we migrate Oracle to PostgreSQL without downtime?", "similar": "new"},
        )
    )
    assert reply.errors == {}
    await flywheel.sweeper.run_once()
    claimed = await flywheel.router.dispatch(Action(ACME, PIA, "request_claim", "1"))
    assert claimed.message is not None and "It's yours" in claimed.message.text
    yield flywheel
    await flywheel.close()


async def one(app: Flywheel, model: type, **where: Any) -> Any:
    async with app.sessions() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return (await session.exec(query)).first()


async def all_of(app: Flywheel, model: type) -> list[Any]:
    async with app.sessions() as session:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())  # type: ignore[attr-defined]


async def save(app: Flywheel, actor: Actor = PIA, **values: str) -> Reply:
    draft = await one(app, Draft)
    return await app.router.dispatch(
        Submission(ACME, actor, "draft_form", {**GOOD, **values}, state=str(draft.id))
    )


async def submit(app: Flywheel, actor: Actor = PIA) -> Reply:
    draft = await one(app, Draft)
    return await app.router.dispatch(Action(ACME, actor, "draft_submit", str(draft.id)))


async def test_only_the_assignee_drafts(app: Flywheel) -> None:
    refused = await app.router.dispatch(Action(ACME, SAM, "draft_open", "1"))
    assert refused.message is not None and "Only the expert who claimed" in refused.message.text
    form = await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    assert form.form is not None and form.form.form_id == "draft_form"
    assert form.form.fields[0].initial == "How do we migrate Oracle to PostgreSQL without downtime?"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"title": ""}, "title"),
        ({"body": "  "}, "body"),
        ({"body": "x" * 3001}, "body"),
        ({"caption_1": "x" * 3001}, "caption_1"),
        ({"canonical_url": "ftp://files.acme.com/zdm"}, "canonical_url"),
        ({"canonical_url": "javascript:alert(1)"}, "canonical_url"),
    ],
)
async def test_bad_draft_input_is_an_inline_error_and_writes_nothing(
    app: Flywheel, values: dict[str, str], field: str
) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    before = await one(app, Draft)
    reply = await save(app, **values)
    assert field in reply.errors
    after = await one(app, Draft)
    assert (after.title, after.body, after.captions) == (before.title, before.body, before.captions)


async def test_compliance_failures_are_shown_before_review(app: Flywheel) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app, body="Guaranteed zero downtime, always.")
    reply = await submit(app)
    assert reply.message is not None
    assert "Remove the phrase “guaranteed”" in reply.message.text
    assert "Add the required disclosure line" in reply.message.text
    assert await all_of(app, DraftVersion) == []
    request = await one(app, ContentRequest)
    assert request.status == "claimed"


async def test_review_over_several_versions_then_approval(app: Flywheel) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app)
    sent = await submit(app)
    assert sent.message is not None and "version 1" in sent.message.text
    assert (await one(app, ContentRequest)).status == "in_review"
    [review] = [r for r in await all_of(app, OutboxMessage) if r.target.get("user") == "rita"]
    buttons = next(b["buttons"] for b in review.payload["blocks"] if b["kind"] == "buttons")
    assert [b["value"] for b in buttons] == ["1:1"] * 3

    not_reviewer = await app.router.dispatch(Action(ACME, SAM, "review_approve", "1:1"))
    assert (
        not_reviewer.message is not None
        and "Only the workspace's reviewers" in not_reviewer.message.text
    )
    form = await app.router.dispatch(Action(ACME, RITA, "review_changes", "1:1"))
    assert form.form is not None and form.form.form_id == "review_form"
    empty = await app.router.dispatch(
        Submission(ACME, RITA, "review_form", {"comment": " "}, state=form.form.state)
    )
    assert "comment" in empty.errors
    await app.router.dispatch(
        Submission(
            ACME,
            RITA,
            "review_form",
            {"comment": "Add the cut-over checklist."},
            state=form.form.state,
        )
    )
    assert (await one(app, ContentRequest)).status == "changes_requested"
    edit = await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    assert edit.form is not None
    assert any("Add the cut-over checklist." in getattr(b, "text", "") for b in edit.form.intro)

    await save(app, body=GOOD["body"] + "\nCut-over checklist: freeze, sync, switch.")
    await submit(app)
    [second] = [
        r
        for r in await all_of(app, OutboxMessage)
        if r.target.get("user") == "rita" and "version 2" in r.payload["text"]
    ]
    changes = next(
        b["text"]
        for b in second.payload["blocks"]
        if "Changes since version 1" in b.get("text", "")
    )
    assert "+Cut-over checklist: freeze, sync, switch." in changes

    outdated = await app.router.dispatch(Action(ACME, RITA, "review_approve", "1:1"))
    assert (
        outdated.message is not None
        and outdated.message.text == "Version 2 is the current one — please review that instead."
    )
    approved = await app.router.dispatch(Action(ACME, RITA, "review_approve", "1:2"))
    assert approved.message is not None and "is live" in approved.message.text
    [post] = await all_of(app, Post)
    assert (post.title, post.version, post.canonical_url, post.slug) == (
        GOOD["title"],
        2,
        GOOD["canonical_url"],
        "zero-downtime-oracle-to-postgresql",
    )
    assert post.captions == [GOOD["caption_1"]]
    assert (await one(app, ContentRequest)).status == "published"
    texts = [str(r.payload["text"]) for r in await all_of(app, OutboxMessage)]
    assert any(t.startswith("Your request is live") for t in texts)
    assert any(t.startswith("Thank you — it's live") for t in texts)
    twice = await app.router.dispatch(Action(ACME, RITA, "review_approve", "1:2"))
    assert twice.message is not None and twice.message.text == "This draft is already approved."
    audit = [(e.action, e.version, e.comment) for e in await all_of(app, AuditEvent)]
    assert audit == [
        ("submitted", 1, None),
        ("changes_requested", 1, "Add the cut-over checklist."),
        ("submitted", 2, None),
        ("approved", 2, None),
    ]


async def test_nobody_approves_their_own_draft(app: Flywheel) -> None:
    await configure(app, reviewers=["rita", "pia"])
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app)
    await submit(app)
    own = await app.router.dispatch(Action(ACME, PIA, "review_approve", "1:1"))
    assert own.message is not None and "You wrote this draft" in own.message.text
    assert await all_of(app, Post) == []


async def test_a_rejected_draft_cannot_be_approved(app: Flywheel) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app)
    await submit(app)
    form = await app.router.dispatch(Action(ACME, RITA, "review_reject", "1:1"))
    assert form.form is not None
    await app.router.dispatch(
        Submission(ACME, RITA, "review_form", {"comment": "Off-message."}, state=form.form.state)
    )
    assert (await one(app, ContentRequest)).status == "declined"
    again = await app.router.dispatch(Action(ACME, RITA, "review_approve", "1:1"))
    assert again.message is not None and "rejected" in again.message.text
    assert await all_of(app, Post) == []


async def test_another_workspace_cannot_review(app: Flywheel) -> None:
    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app)
    await submit(app)
    await app.router.dispatch(Action(GLOBEX, RITA, "help", ""))
    await configure(app, GLOBEX, reviewers=["rita"])
    reply = await app.router.dispatch(Action(GLOBEX, RITA, "review_approve", "1:1"))
    assert reply.message is not None and "can't find that draft" in reply.message.text
    assert (await one(app, ContentRequest)).status == "in_review"


async def test_without_openai_the_ai_button_gives_a_labelled_template(app: Flywheel) -> None:
    reply = await app.router.dispatch(Action(ACME, PIA, "draft_ai", "1"))
    assert reply.form is not None and reply.form.form_id == "draft_form"
    assert any("emplate" in getattr(b, "text", "") for b in reply.form.intro)
    draft = await one(app, Draft)
    assert draft.ai_assisted is False and draft.body


async def test_a_published_post_is_what_its_author_is_known_for(app: Flywheel) -> None:
    from handlers.routing.ranking import load_docs

    await app.router.dispatch(Action(ACME, PIA, "draft_open", "1"))
    await save(app)
    await submit(app)
    await app.router.dispatch(Action(ACME, RITA, "review_approve", "1:1"))
    async with app.sessions() as session:
        acme = select(Workspace).where(Workspace.external_id == "acme")
        workspace = (await session.exec(acme)).one()
        docs = await load_docs(session, workspace.id or 0)
    [pia] = [doc for doc in docs if doc.user_id == "pia"]
    assert pia.published == (f"{GOOD['title']}\n{GOOD['body']}",)


def test_a_draft_and_an_ai_task_move_only_as_their_tables_allow() -> None:
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    draft = Draft(workspace_id=1, request_id=1, author_id=1, status="approved")
    with pytest.raises(InvalidTransition, match="This draft is approved, so it can't be edited"):
        require_editable(draft)
    with pytest.raises(InvalidTransition, match="can't be sent back for changes"):
        move_draft(draft, DraftStatus.CHANGES_REQUESTED, now)
    assert draft.status == DraftStatus.APPROVED
    draft.status = DraftStatus.CHANGES_REQUESTED
    require_editable(draft)
    move_draft(draft, DraftStatus.IN_REVIEW, now)
    assert (draft.status, draft.updated_at) == (DraftStatus.IN_REVIEW, now)

    task = AiTask(workspace_id=1, draft_id=1, requested_by_id=1, status="done")
    with pytest.raises(InvalidTransition, match="already done"):
        move_task(task, AiTaskStatus.RUNNING)
    task.status = AiTaskStatus.RUNNING
    move_task(task, AiTaskStatus.RUNNING)  # a crashed worker's task is claimed again
    move_task(task, AiTaskStatus.FAILED)
    assert task.status == AiTaskStatus.FAILED
