"""Rows for tests and benchmarks: a workspace, its people, and the chain request → draft → post.

Each builder adds to the session it is given and flushes, so ids are known and the caller's
transaction decides when it all commits. Only the fields every row needs are filled in;
anything a test or benchmark cares about is passed by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ContentRequest, Draft, Member, Post, Workspace


async def add_workspace(
    session: AsyncSession,
    now: datetime,
    *,
    platform: str = "slack",
    external_id: str = "T1",
    settings: dict[str, Any] | None = None,
) -> Workspace:
    """A workspace created at `now`, with `settings` as stored (a WorkspaceSettings dump)."""
    workspace = Workspace(
        platform=platform, external_id=external_id, created_at=now, settings=settings or {}
    )
    session.add(workspace)
    await session.flush()
    return workspace


def workspace_id(workspace: Workspace) -> int:
    """The id of a flushed workspace (a builder always flushes)."""
    if workspace.id is None:
        raise ValueError("the workspace has not been flushed yet")
    return workspace.id


async def add_members(
    session: AsyncSession, workspace: Workspace, user_ids: Iterable[str], now: datetime
) -> list[Member]:
    """One member per platform user id, in the given order."""
    people = [
        Member(workspace_id=workspace_id(workspace), user_id=u, created_at=now, updated_at=now)
        for u in user_ids
    ]
    session.add_all(people)
    await session.flush()
    return people


async def add_post(
    session: AsyncSession,
    workspace: Workspace,
    author: Member | int,
    now: datetime,
    *,
    topic: str,
    slug: str,
    title: str,
    request_status: str = "open",
    draft_status: str = "editing",
    **post: Any,
) -> Post:
    """A published post with the request and draft it came from, written by `author`.

    `post` sets any other column of the post (`canonical_url`, `captions`, …); the
    approver is the author unless `approved_by_id` is given.
    """
    wid = workspace_id(workspace)
    author_id = author if isinstance(author, int) else author.id or 0
    request = ContentRequest(
        workspace_id=wid,
        requester_id=author_id,
        topic=topic,
        status=request_status,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    await session.flush()
    draft = Draft(
        workspace_id=wid,
        request_id=request.id or 0,
        author_id=author_id,
        status=draft_status,
        created_at=now,
        updated_at=now,
    )
    session.add(draft)
    await session.flush()
    post.setdefault("approved_by_id", author_id)
    row = Post(
        workspace_id=wid,
        request_id=request.id,
        draft_id=draft.id or 0,
        version=1,
        slug=slug,
        title=title,
        author_id=author_id,
        published_at=now,
        **post,
    )
    session.add(row)
    await session.flush()
    return row
