"""Workspace and member resolution, and the router's storage-free path for plain commands.

On SQLite and PostgreSQL: what an interaction finds is read in its own transaction, profile
changes the platform reports are written, and tenants never share rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.flows import build_router
from handlers.core.context import Config, Context
from handlers.core.interactions import Actor, Command, Origin, Reply
from handlers.core.markup import plain
from handlers.core.members import is_admin, resolve
from handlers.core.router import Router
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.models import Member, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ACME = Origin(platform="slack", workspace_id="T0001", workspace_name="Acme")
GLOBEX = Origin(platform="slack", workspace_id="T0002", workspace_name="Globex")
ALICE = Actor(user_id="UALICE", name="alice", email="alice@acme.test", tz="Europe/Paris")


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


async def interact(
    sessions: SessionFactory, origin: Origin, actor: Actor
) -> tuple[Workspace, Member]:
    async with transaction(sessions) as session:
        return await resolve(session, origin, actor, NOW)


async def rows(sessions: SessionFactory, model: type[Workspace] | type[Member]) -> int:
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_first_contact_creates_both_rows_and_later_ones_find_them(
    sessions: SessionFactory,
) -> None:
    workspace, member = await interact(sessions, ACME, ALICE)
    again_workspace, again_member = await interact(sessions, ACME, ALICE)

    assert (again_workspace.id, again_member.id) == (workspace.id, member.id)
    assert (await rows(sessions, Workspace), await rows(sessions, Member)) == (1, 1)
    assert (member.workspace_id, member.name, member.email, member.tz) == (
        workspace.id,
        "alice",
        "alice@acme.test",
        "Europe/Paris",
    )


async def test_a_new_member_of_a_known_workspace_is_created(sessions: SessionFactory) -> None:
    workspace, alice = await interact(sessions, ACME, ALICE)
    same_workspace, bob = await interact(sessions, ACME, Actor(user_id="UBOB", name="bob"))

    assert same_workspace.id == workspace.id
    assert bob.id != alice.id
    assert (bob.workspace_id, bob.user_id, bob.name) == (workspace.id, "UBOB", "bob")


async def test_profile_changes_are_written(sessions: SessionFactory) -> None:
    await interact(sessions, ACME, ALICE)
    moved = Actor(user_id="UALICE", name="Alice M.", email="alice@globex.test", tz="Asia/Tokyo")
    await interact(sessions, ACME, moved)

    async with sessions() as session:
        alice = (await session.exec(select(Member))).one()
    assert (alice.name, alice.email, alice.tz) == ("Alice M.", "alice@globex.test", "Asia/Tokyo")
    assert alice.updated_at == NOW


async def test_an_admin_flag_change_takes_effect_on_the_next_interaction(
    sessions: SessionFactory,
) -> None:
    acme, before = await interact(sessions, ACME, ALICE)
    promoted = replace(ALICE, is_platform_admin=True)
    _, after = await interact(sessions, ACME, promoted)
    _, demoted = await interact(sessions, ACME, ALICE)

    assert not is_admin(before, Config(), acme)
    assert is_admin(after, Config(), acme)
    assert not is_admin(demoted, Config(), acme)
    async with sessions() as session:
        stored = (await session.exec(select(Member))).one()
    assert stored.is_platform_admin is False


async def test_flywheel_admins_count_only_where_the_platform_narrowed_them(
    sessions: SessionFactory,
) -> None:
    acme, alice_at_acme = await interact(sessions, ACME, ALICE)
    globex, alice_at_globex = await interact(sessions, GLOBEX, ALICE)
    tenant, alice_on_teams = await interact(
        sessions, Origin(platform="teams", workspace_id="x"), ALICE
    )
    by_id, by_email = (
        Config(admins=frozenset({"UALICE"})),
        Config(admins=frozenset({"alice@acme.test"})),
    )
    for config in (by_id, by_email):
        config.admin_reach.narrow("slack", lambda team: team == "T0001")

        assert is_admin(alice_at_acme, config, acme)
        assert not is_admin(alice_at_globex, config, globex)
        # Teams was not narrowed: FLYWHEEL_ADMINS applies in every tenant, as before.
        assert is_admin(alice_on_teams, config, tenant)
        assert config.admins_in(globex) == frozenset()


async def test_an_unknown_profile_overwrites_nothing(sessions: SessionFactory) -> None:
    await interact(sessions, ACME, replace(ALICE, is_platform_admin=True))
    outage = Actor(user_id="UALICE", name="ualice", profile_known=False)
    _, member = await interact(sessions, ACME, outage)

    assert (member.name, member.email, member.is_platform_admin) == (
        "alice",
        "alice@acme.test",
        True,
    )


async def test_two_workspaces_never_share_rows(sessions: SessionFactory) -> None:
    acme, alice_at_acme = await interact(sessions, ACME, ALICE)
    globex, alice_at_globex = await interact(sessions, GLOBEX, ALICE)
    teams = Origin(platform="teams", workspace_id="T0001")
    tenant, alice_on_teams = await interact(sessions, teams, ALICE)

    assert len({acme.id, globex.id, tenant.id}) == 3
    assert len({alice_at_acme.id, alice_at_globex.id, alice_on_teams.id}) == 3
    assert alice_at_globex.workspace_id == globex.id
    assert alice_on_teams.workspace_id == tenant.id
    # Another workspace's row never answers for this one, even after it exists.
    again, member = await interact(sessions, GLOBEX, ALICE)
    assert (again.id, member.id) == (globex.id, alice_at_globex.id)


async def test_the_workspace_name_follows_the_platform(sessions: SessionFactory) -> None:
    await interact(sessions, ACME, ALICE)
    renamed = Origin(platform="slack", workspace_id="T0001", workspace_name="Acme Corp")
    workspace, _ = await interact(sessions, renamed, ALICE)
    # An origin that does not say the name leaves it alone.
    await interact(sessions, Origin(platform="slack", workspace_id="T0001"), ALICE)

    async with sessions() as session:
        stored = (await session.exec(select(Workspace))).one()
    assert workspace.name == stored.name == "Acme Corp"


async def test_what_a_handler_changes_on_the_workspace_is_saved(
    sessions: SessionFactory,
) -> None:
    await interact(sessions, ACME, ALICE)
    async with transaction(sessions) as session:
        workspace, _ = await resolve(session, ACME, ALICE, NOW)
        workspace.settings = {**workspace.settings, "reviewers": ["UALICE"]}
        session.add(workspace)

    workspace, _ = await interact(sessions, ACME, ALICE)
    assert workspace.settings["reviewers"] == ["UALICE"]


# -- the router's plain commands ----------------------------------------------------------


class DatabaseAsked(Exception):
    """The router asked for a session where it should have needed none."""


@pytest.fixture
def unreachable() -> Router:
    """A router whose every attempt at a unit of work fails."""

    def sessions() -> AsyncSession:
        raise DatabaseAsked

    return build_router(cast(SessionFactory, sessions), FrozenClock(), Config())


@pytest.mark.parametrize("text", ["help", "frobnicate"])
async def test_help_and_unknown_commands_need_no_database(unreachable: Router, text: str) -> None:
    reply = await unreachable.dispatch(Command(origin=ACME, actor=ALICE, name=text))

    assert reply.message is not None
    assert "`request [topic]`" in reply.message.text


async def test_commands_that_need_the_member_still_open_a_unit_of_work(
    unreachable: Router,
) -> None:
    with pytest.raises(DatabaseAsked):
        await unreachable.dispatch(Command(origin=ACME, actor=ALICE, name="home"))


async def test_help_answered_later_is_queued_in_a_transaction(
    sessions: SessionFactory,
) -> None:
    router = build_router(sessions, FrozenClock(), Config())
    in_a_thread = Origin(
        platform="slack",
        workspace_id="T0001",
        reply_to={"channel": "C0GENERAL", "thread": "1763892000.000100"},
    )

    reply = await router.dispatch(Command(origin=in_a_thread, actor=ALICE, name="help"))

    assert reply == Reply()
    async with sessions() as session:
        [queued] = (await session.exec(select(OutboxMessage))).all()
    assert queued.target == {"channel": "C0GENERAL", "thread": "1763892000.000100"}
    assert "Here is what I can do" in queued.payload["text"]


async def test_a_plain_command_runs_in_a_unit_of_work_when_asked_for_one(
    sessions: SessionFactory,
) -> None:
    router = build_router(sessions, FrozenClock(), Config())
    handler = router.handler_for(Command(origin=ACME, actor=ALICE, name="help"))
    async with transaction(sessions) as session:
        workspace, member = await resolve(session, ACME, ALICE, NOW)
        ctx = Context(session, FrozenClock(), Config(), workspace, member=member)
        reply = await handler(ctx, Command(origin=ACME, actor=ALICE, name="help"))

    assert reply.message is not None
    assert plain(reply.message.text).startswith("Here is what I can do:")
