"""Crashes and outages, against real `flywheel` processes on PostgreSQL and the fake Slack API.

- a worker killed (-9) in the middle of a fan-out, another started: every recipient gets the
  message; duplicates are no more than the rows the killed worker held;
- PostgreSQL restarted in the middle of a fan-out and of a burst of `/r/` clicks: the
  processes reconnect by themselves; nothing is lost, and a SIGTERM afterwards loses no click;
- the Slack API refusing connections, then answering 503, for FLYWHEEL_TEST_OUTAGE_SECONDS
  (16 by default: half refused, half 503) during a fan-out: afterwards every message is sent
  exactly once, within the limit, and none used up its attempts;
- the scheduler's leader killed once its sweeps queued a ping, a reminder and a digest:
  another worker leads within LEADER_RETRY (15 s) and none of them is sent twice.

Slow (a few minutes together): `make test-crash`, which CI runs. Restarting PostgreSQL is
only done where the test may control the local server: CI=true or
FLYWHEEL_TEST_RESTART_POSTGRES=1; the server is left running.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.scheduler import LEADER_RETRY
from handlers.core.context import Config, Scope
from handlers.core.messages import Message
from handlers.core.ports import SystemClock
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.sharing import tracked_links
from storage import outbox
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import ContentRequest, Draft, ExpertProfile, Member, Post, Workspace
from testing.fakes.slack_api import FakeSlack
from testing.processes import BOT_TOKEN, SIGNING_SECRET, processes
from tests.conftest import POSTGRES_URL, postgres_schema

pytestmark = pytest.mark.crash

LIMIT = 50  # calls a second the fake Slack API accepts
# The workers' rate, as an operator would set it: a call leaves at its slot but reaches the API
# a little later, and at exactly the limit any late arrival makes 51 in some second (a 429,
# which pauses the whole workspace for its Retry-After).
RATE = 0.95 * LIMIT
LEASE = 10  # FLYWHEEL_OUTBOX_LEASE_SECONDS in these tests, so a dead worker's rows come back soon
OUTAGE = float(os.environ.get("FLYWHEEL_TEST_OUTAGE_SECONDS", "16"))
# How long a test waits for what must happen, polled: a bound, not a timing assertion.
PATIENCE = 180.0
TEAM = "T0001"  # the fake Slack API's team


@pytest.fixture
async def database() -> AsyncIterator[str]:
    with postgres_schema() as url:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        yield url


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(rate_limit=LIMIT)
    await fake.start()
    yield fake
    await fake.close()


def slack_env(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
        "FLYWHEEL_OUTBOX_RATE": str(RATE),
        "FLYWHEEL_OUTBOX_LEASE_SECONDS": str(LEASE),
        "LOG_LEVEL": "INFO",
    }


async def fan_out(url: str, count: int, **settings: object) -> list[str]:
    """A workspace and `count` DMs queued at once, as a fan-out queues them; the users."""
    users = [f"U{n:05d}" for n in range(count)]
    now = datetime.now(UTC)
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        workspace = Workspace(
            platform="slack",
            external_id=TEAM,
            created_at=now,
            settings=WorkspaceSettings.model_validate(settings).model_dump(),
        )
        session.add(workspace)
        await session.flush()
        payload = Message(text="A post to share").model_dump(mode="json")
        rows = [
            {
                "workspace_id": workspace.id or 0,
                "dedupe_key": f"fanout:{user}",
                "kind": "message",
                "target": {"user": user},
                "payload": payload,
            }
            for user in users
        ]
        await outbox.enqueue_many(session, rows, now)
    await engine.dispose()
    return users


def per_user(fake: FakeSlack) -> Counter[str]:
    return Counter(str(c.args["channel"]) for c in fake.calls_to("chat.postMessage"))


async def until(done: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll `done` for as long as PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        result = done()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {PATIENCE} s: {what}")


async def scalar(url: str, query: str, **params: object) -> int:
    """One number from the database, on a connection of its own (it may have restarted)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(query), params)).scalar_one())
    finally:
        await engine.dispose()


async def all_sent(url: str, fake: FakeSlack, users: list[str]) -> bool:
    """Every user has the message, and none of the fan-out's rows is left to send.

    Only the fan-out's rows: what the leader's sweeps queue meanwhile (an update to a
    requester, say) may rightly wait for its recipient's working hours.
    """
    if not set(users) <= set(per_user(fake)):
        return False
    left = "SELECT count(*) FROM outbox WHERE status <> 'sent' AND dedupe_key LIKE 'fanout:%'"
    return await scalar(url, left) == 0


def duplicates(fake: FakeSlack) -> int:
    return sum(n - 1 for n in per_user(fake).values() if n > 1)


async def test_a_worker_killed_mid_fan_out_and_another_started_loses_nothing(
    tmp_path: Path, database: str, slack: FakeSlack
) -> None:
    users = await fan_out(database, 600)
    async with processes(tmp_path, database, **slack_env(slack)) as group:
        doomed = await group.start("worker")
        survivor = await group.start("worker")
        await until(lambda: len(per_user(slack)) >= 150, "150 DMs")
        await doomed.kill()
        # What the dead worker held: sent or not, its lease must run out before anyone else
        # may send it, and those already on the wire are the only possible duplicates.
        held = await scalar(
            database,
            "SELECT count(*) FROM outbox WHERE status = 'sending' AND claimed_by LIKE :me",
            me=f"%:{doomed.pid}:%",
        )
        replacement = await group.start("worker")
        await until(lambda: all_sent(database, slack, users), "every DM sent")
        await asyncio.sleep(1.0)  # anything more would arrive now
        for worker in (survivor, replacement):
            assert await worker.terminate() == 0
    assert set(per_user(slack)) == set(users)
    assert duplicates(slack) <= held
    print(f"\nkill -9 mid fan-out: the killed worker held {held}, duplicates {duplicates(slack)}")


def may_restart_postgres() -> str | None:
    """Why this run may not restart PostgreSQL, or None when it may."""
    if not (
        os.environ.get("CI") == "true" or os.environ.get("FLYWHEEL_TEST_RESTART_POSTGRES") == "1"
    ):
        return "restarting PostgreSQL needs CI=true or FLYWHEEL_TEST_RESTART_POSTGRES=1"
    if make_url(POSTGRES_URL).host not in ("127.0.0.1", "localhost", "::1"):
        return "PostgreSQL is not local"
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return "no pg_ctlcluster to restart the local PostgreSQL with"
    return None


def postgres_ready() -> bool:
    url = make_url(POSTGRES_URL)
    try:
        with psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
            password=url.password, connect_timeout=2,
        ):  # fmt: skip
            return True
    except psycopg.Error:
        return False


async def pg_ctlcluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await process.wait()
    for _ in range(120):
        if await asyncio.to_thread(postgres_ready):
            return
        await asyncio.sleep(0.5)


@pytest.fixture
async def restartable_postgres() -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Restarts the local PostgreSQL on demand; it is running again when the test ends."""
    reason = may_restart_postgres()
    if reason:
        pytest.skip(reason)

    async def restart() -> None:
        await pg_ctlcluster("restart")

    try:
        yield restart
    finally:
        if not await asyncio.to_thread(postgres_ready):
            await pg_ctlcluster("start")


async def tracked_link(url: str) -> str:
    """A published post and one colleague's tracked link to it; the link's code."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with transaction(session_factory(engine)) as session:
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == TEAM))
        ).one()
        sharer = Member(
            workspace_id=workspace.id or 0, user_id="USHARER", created_at=now, updated_at=now
        )
        session.add(sharer)
        await session.flush()
        request = ContentRequest(
            workspace_id=workspace.id, requester_id=sharer.id or 0, topic="Upgrades",
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(request)
        await session.flush()
        draft = Draft(
            workspace_id=workspace.id, request_id=request.id or 0, author_id=sharer.id or 0,
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(draft)
        await session.flush()
        post = Post(
            workspace_id=workspace.id, request_id=request.id, draft_id=draft.id or 0, version=1,
            slug="upgrades", title="Upgrades", canonical_url="https://blog.acme.test/upgrades",
            author_id=sharer.id or 0, approved_by_id=sharer.id or 0, published_at=now,
        )  # fmt: skip
        session.add(post)
        await session.flush()
        scope = Scope(session, SystemClock(), Config(), workspace)
        links = await tracked_links.links_for(scope, post, [sharer], ("linkedin",))
        code = next(iter(links.values())).code
    await engine.dispose()
    return code


class Clicks:
    """A steady burst of visits to one tracked link, each from a new browser."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.redirected = self.refused = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            agent = f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{n}.0"
            try:
                async with self.http.get(
                    self.url, allow_redirects=False, headers={"User-Agent": agent}
                ) as response:
                    if response.status == 302:
                        self.redirected += 1
                    else:
                        self.refused += 1
            except aiohttp.ClientError:
                self.refused += 1
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()


async def test_postgres_restarted_mid_fan_out_and_mid_clicks_loses_nothing(
    tmp_path: Path,
    database: str,
    slack: FakeSlack,
    restartable_postgres: Callable[[], Awaitable[None]],
) -> None:
    users = await fan_out(database, 500)
    code = await tracked_link(database)
    async with (
        processes(tmp_path, database, **slack_env(slack)) as group,
        aiohttp.ClientSession() as http,
    ):
        web = await group.start("serve")
        worker = await group.start("worker")
        assert await web.ready(http) == 200
        clicks = Clicks(http, f"{web.base}/r/{code}")
        burst = asyncio.create_task(clicks.run())
        await until(lambda: len(per_user(slack)) >= 100 and clicks.redirected >= 100, "sending")
        before = clicks.redirected
        await restartable_postgres()
        await until(lambda: clicks.redirected >= before + 200, "clicks after the restart")
        await until(lambda: all_sent(database, slack, users), "every DM sent")
        clicks.stop()
        await burst
        # The web process is stopped gracefully: what it buffered is written.
        assert await web.terminate() == 0
        assert await worker.terminate() == 0
        assert worker.process.returncode == 0
    written = await scalar(database, "SELECT count(*) FROM click")
    assert written == clicks.redirected
    assert set(users) <= set(per_user(slack))
    assert duplicates(slack) <= 8  # FLYWHEEL_OUTBOX_CONCURRENCY: sends on the wire at most
    # The worker met the restart, wherever it was: claiming, taking a send slot, recording.
    met = ("dispatcher.database_unavailable", "outbox.limits_unavailable", "outbox.outcome_delayed")
    assert sum(worker.events(event) for event in met) >= 1
    assert '"event": "clicks.lost"' not in web.log()
    print(
        f"\nPostgreSQL restart: {clicks.redirected} clicks redirected and written "
        f"({clicks.refused} refused), duplicates {duplicates(slack)}"
    )


async def test_slack_down_then_503_during_a_fan_out_drains_after_once_each(
    tmp_path: Path, database: str, slack: FakeSlack
) -> None:
    users = await fan_out(database, 400)
    async with processes(tmp_path, database, **slack_env(slack)) as group:
        worker = await group.start("worker")
        await until(lambda: len(per_user(slack)) >= 60, "60 DMs")
        await slack.stop_listening()
        await asyncio.sleep(OUTAGE / 2)
        await slack.listen_again()
        slack.unavailable = 503
        await asyncio.sleep(OUTAGE / 2)
        slack.unavailable = None
        back = time.monotonic()
        await until(lambda: all_sent(database, slack, users), "every DM sent")
        assert await worker.terminate() == 0
    assert per_user(slack) == Counter({user: 1 for user in users})
    attempts = await scalar(database, "SELECT coalesce(max(attempts), 0) FROM outbox")
    assert attempts <= 2  # nobody's attempts were used up by the outage
    assert worker.events("outbox.platform_down") >= 1
    assert worker.events("outbox.platform_back") >= 1
    after = sorted(c.at for c in slack.calls_to("chat.postMessage") if c.at >= back)
    rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else float("nan")
    print(
        f"\noutage of {OUTAGE:g} s: {len(after)} DMs after it at {rate:.1f}/s "
        f"(workers' rate {RATE:g}/s, API limit {LIMIT}/s), "
        f"429s {len(slack.calls_to('chat.postMessage:limited'))}"
    )


async def sweep_work(url: str) -> dict[str, str]:
    """Work only the leader's sweeps send: an open request with an expert to ping, a claimed
    request due tomorrow whose assignee is to be reminded, and (in the workspace's settings)
    a digest due. The channel each goes to, by what it is."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with transaction(session_factory(engine)) as session:
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == TEAM))
        ).one()
        wid = workspace.id or 0
        people: dict[str, int] = {}
        for user in ("UREQUESTER", "UEXPERT", "UASSIGNEE"):
            member = Member(workspace_id=wid, user_id=user, created_at=now, updated_at=now)
            session.add(member)
            await session.flush()
            people[user] = member.id or 0
        session.add(
            ExpertProfile(
                workspace_id=wid, member_id=people["UEXPERT"], topics=["kubernetes upgrades"],
                bio="Runs our Kubernetes upgrades.", created_at=now, updated_at=now,
            )
        )  # fmt: skip
        session.add(
            ContentRequest(
                workspace_id=wid, requester_id=people["UREQUESTER"],
                topic="Kubernetes upgrades without downtime", tags=["kubernetes"],
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        session.add(
            ContentRequest(
                workspace_id=wid, requester_id=people["UREQUESTER"], topic="Cost control",
                status="claimed", assignee_id=people["UASSIGNEE"], claimed_at=now,
                needed_by=now.date() + timedelta(days=1), created_at=now, updated_at=now,
            )
        )  # fmt: skip
    await engine.dispose()
    return {"ping": "UEXPERT", "reminder": "UASSIGNEE", "digest": "CDIGEST"}


QUEUED_FOR = (
    "SELECT count(DISTINCT coalesce(target->>'user', target->>'channel')) FROM outbox "
    "WHERE coalesce(target->>'user', target->>'channel') = ANY(:channels)"
)


async def test_the_leader_killed_another_leads_and_no_sweep_sends_twice(
    tmp_path: Path, database: str, slack: FakeSlack
) -> None:
    now = datetime.now(UTC)
    await fan_out(
        database,
        0,
        timezone="UTC",
        digest_channels=["CDIGEST"],
        digest_day=now.strftime("%A").lower(),
        digest_time="00:00",
        digests_from=(now - timedelta(days=8)).isoformat(),
        # Nudges may land at any hour, so the test does not depend on when it runs.
        quiet_hours_start="23:59",
        quiet_hours_end="00:00",
        quiet_weekends=False,
    )
    work = await sweep_work(database)

    def sent() -> dict[str, int]:
        return {what: per_user(slack)[channel] for what, channel in work.items()}

    async def all_queued() -> bool:
        return await scalar(database, QUEUED_FOR, channels=list(work.values())) == len(work)

    async with processes(tmp_path, database, **slack_env(slack)) as group:
        leader = await group.start("worker")
        await until(lambda: leader.events("scheduler.leading") == 1, "a leader")
        follower = await group.start("worker")
        # Killed once its sweeps have queued all three (what is sent by then varies).
        await until(all_queued, "the sweeps")
        async with aiohttp.ClientSession() as http:
            await follower.ready(http, "/healthz")
        queued = await scalar(database, "SELECT count(*) FROM outbox")
        digests = await scalar(database, "SELECT count(*) FROM digest")
        await leader.kill()
        killed = time.monotonic()
        await until(lambda: follower.events("scheduler.leading") == 1, "a new leader")
        took = time.monotonic() - killed
        # The new leader sweeps at once; everything queued goes out, each once.
        await until(lambda: all(n >= 1 for n in sent().values()), "the ping, reminder, digest")
        await asyncio.sleep(5.0)
        assert await follower.terminate() == 0
    assert took <= LEADER_RETRY + 5.0
    assert sent() == {"ping": 1, "reminder": 1, "digest": 1}
    # The new leader's sweeps found everything done: not a row more was queued.
    assert await scalar(database, "SELECT count(*) FROM digest") == digests
    assert await scalar(database, "SELECT count(*) FROM outbox") == queued
    print(f"\nleader killed: the other led after {took:.1f} s (LEADER_RETRY {LEADER_RETRY:g} s)")
