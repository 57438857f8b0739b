"""Shared fixtures: a database on SQLite and PostgreSQL, a frozen clock, the fake Slack API."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from bot.app import Flywheel, build
from bot.settings import Settings, load_settings
from storage.db import create_engine
from storage.migrate import upgrade
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack

POSTGRES_URL = os.environ.get(
    "FLYWHEEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token"
SECRET_KEY = "test-secret-key-0123456789abcdef"


# Property tests: a bounded, repeatable run in `make test`; `HYPOTHESIS_PROFILE=long` for a
# longer, randomised one. Examples share one app per test, hence the health check.
_SHARED_APP = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SHARED_APP,
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SHARED_APP,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _postgres_problem() -> str | None:
    url = make_url(POSTGRES_URL)
    try:
        with psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=3,
        ):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL at {url.host}:{url.port} unreachable: {str(error).strip()[:120]}"


_PG_PROBLEM: bool | str | None = False


def postgres_problem() -> str | None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_problem()
    return _PG_PROBLEM  # type: ignore[return-value]


def require_postgres() -> None:
    """Skip without PostgreSQL, except in CI, where its absence fails the test."""
    problem = postgres_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {problem}")
        pytest.skip(problem)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a PostgreSQL schema of its own, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(POSTGRES_URL)
    conninfo = dict(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    )
    with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    engine = create_engine(database_url)
    await upgrade(engine)
    await engine.dispose()
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    fake.add_user("UADMIN", "ada", email="ada@acme.test", is_admin=True)
    fake.add_user("UALICE", "alice", email="alice@acme.test")
    fake.add_user("UBOB", "bob", email="bob@acme.test", tz="America/New_York")
    await fake.start()
    yield fake
    await fake.close()


def slack_settings(database_url: str, fake: FakeSlack, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.url,
        "flywheel_secret_key": SECRET_KEY,
        "flywheel_outbox_rate": 1000.0,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def flywheel(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    """The whole app wired to the fake Slack API, on a migrated database."""
    app = build(slack_settings(migrated_url, fake_slack), clock=clock)
    yield app
    await app.close()
