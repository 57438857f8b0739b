"""Teams: proactive messages from several real worker processes within Teams' limits.

`--workers` (3) real `flywheel worker` processes on one PostgreSQL send `--count` (3,000)
proactive messages spread over `--conversations` (300) conversations of one tenant to a fake
Bot Connector that enforces Teams' published limits (per conversation 7/1 s, 8/2 s, 60/30 s,
1,800/h; 30/s for the tenant) and answers 429 beyond them. Outbound tokens come from a fake
Entra ID over HTTPS, as in production. The baseline is the tenant's limit, 30 calls/s.

Targets: 0 windows exceeded (429 answers from the fake), at least 0.8 of the tenant rate,
0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import Figures, report, verdict
from benchmarks.outbox import busiest_second, by_status, database, drain_with_workers
from bot import logs
from handlers.core.messages import Message
from storage import outbox
from storage.db import create_engine, session_factory, transaction
from storage.models import ConversationReference, Workspace
from testing.fakes.bot_connector import FakeBotConnector
from testing.fakes.entra import FakeEntra

TENANT_RATE = 30.0
TARGET_FRACTION = 0.8
TENANT = "tenant-bench"
APP_ID = "00000000-0000-0000-0000-0000000bench"
PASSWORD = "bench-app-password"
SCOPE = "https://api.botframework.test"


async def seed(url: str, connector: FakeBotConnector, count: int, conversations: int) -> None:
    now = datetime.now(UTC)
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        workspace = Workspace(platform="teams", external_id=TENANT, created_at=now)
        session.add(workspace)
        await session.flush()
        wid = workspace.id or 0
        for n in range(conversations):
            cid = f"a:chat-{n:04d}"
            session.add(
                ConversationReference(
                    workspace_id=wid,
                    conversation_id=cid,
                    kind="personal",
                    user_id=f"29:user-{n:04d}",
                    tenant_id=TENANT,
                    service_url=connector.url,
                    bot_id=f"28:{APP_ID}",
                    reference={
                        "bot": {"id": f"28:{APP_ID}", "name": "Flywheel"},
                        "user": {"id": f"29:user-{n:04d}"},
                        "conversation": {
                            "id": cid,
                            "conversationType": "personal",
                            "tenantId": TENANT,
                        },
                        "channelId": "msteams",
                        "serviceUrl": connector.url,
                    },
                    created_at=now,
                    updated_at=now,
                )
            )
        payload = Message(text="A post to share").model_dump(mode="json")
        rows = [
            {
                "workspace_id": wid,
                "dedupe_key": f"teams:{n}",
                "kind": "message",
                "target": {"channel": f"a:chat-{n % conversations:04d}"},
                "payload": payload,
            }
            for n in range(count)
        ]
        await outbox.enqueue_many(session, rows, now)
    await engine.dispose()


async def measure(count: int, conversations: int, workers: int, redis: str | None) -> Figures:
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as folder:
        entra = FakeEntra(Path(folder), app_id=APP_ID, secret=PASSWORD, scope=SCOPE)
        connector = FakeBotConnector(token=entra.token, enforce_limits=True)
        await connector.start()
        env = {
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": PASSWORD,
            "MICROSOFT_LOGIN_URL": entra.login_url,
            "MICROSOFT_OAUTH_SCOPE": SCOPE,
            "REQUESTS_CA_BUNDLE": str(entra.ca_file),
            # The workspace's own pace above the tenant's: Teams' windows are what is measured.
            "FLYWHEEL_OUTBOX_RATE": str(2 * TENANT_RATE),
            "LOG_LEVEL": "WARNING",
            **({"REDIS_URL": redis} if redis else {}),
        }
        try:
            async with database(True) as url:
                await seed(url, connector, count, conversations)
                engine = create_engine(url)
                wall = await drain_with_workers(Path(folder), url, env, workers, engine, count)
                statuses = await by_status(engine)
                await engine.dispose()
        finally:
            await connector.close()
            entra.close()
    print("  calls by op:", dict(Counter((c.op, c.landed is not None) for c in connector.calls)))
    landed = [c for c in connector.calls if c.op in ("send", "reply") and c.landed]
    per_conversation = Counter(c.conversation for c in landed)
    times = sorted(c.at for c in landed)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    fraction = achieved / TENANT_RATE
    expected = count // conversations
    lost = sum(max(0, expected - per_conversation[f"a:chat-{n:04d}"]) for n in range(conversations))
    return {
        "limits kept in": "redis" if redis else "postgresql",
        "worker processes": workers,
        "messages / conversations": f"{count} / {conversations}",
        "tenant limit (calls/s, baseline)": TENANT_RATE,
        "achieved together (calls/s)": round(achieved, 2),
        "achieved / tenant limit": round(fraction, 3),
        f"target ≥ {TARGET_FRACTION}": verdict(fraction, TARGET_FRACTION),
        "windows exceeded (429 from the fake)": connector.exceeded,
        "exceeded, by window": dict(connector.windows.exceeded_by),
        "target 0": verdict(-connector.exceeded, 0),
        "busiest second for the tenant (calls)": busiest_second(times),
        "lost": lost + statuses.get(outbox.FAILED, 0),
        "duplicated": len(landed) - count + lost,
        "rows by status": dict(statuses),
        "wall time (s)": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks teams", description=__doc__)
    parser.add_argument("--count", type=int, default=3_000, help="messages (3,000)")
    parser.add_argument("--conversations", type=int, default=300, help="conversations (300)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (3)")
    parser.add_argument("--redis", default=None, metavar="URL", help="keep the limits in Redis")
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    print(f"teams: {args.count} messages over {args.conversations} conversations, "
          f"{args.workers} workers")  # fmt: skip
    figures = asyncio.run(measure(args.count, args.conversations, args.workers, args.redis))
    report("teams", figures)
    return figures


if __name__ == "__main__":
    main()
