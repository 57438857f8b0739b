"""Fan-out: one approved post to `--count` opted-in colleagues through the real pipeline.

The distribution sweep plans every recipient (suggestion, three tracked links, caption,
outbox row) in one transaction; the dispatcher then sends the DMs through the real
SlackSender to a fake Slack API that allows `--limit` calls a second (429 + Retry-After
beyond it). Baseline: that limit. Figures: the achieved rate as a fraction of it (target
≥ 0.9), DMs lost and duplicated (target 0), the time to plan, and the process's peak
resident memory (target < 300 MB; it includes the fake API, so it overstates Flywheel's).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
from collections import Counter

from sqlalchemy import func, select

from benchmarks import Figures, Stopwatch, report, verdict
from benchmarks.outbox import Delivery, busiest_second, database, send_all
from bot import logs
from handlers.core.context import Config, Scope
from handlers.core.ports import SystemClock
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.sharing import distribution
from storage.db import create_engine, session_factory, transaction
from storage.models import (
    Distribution,
    Member,
    ShareSuggestion,
    Workspace,
)
from testing.builders import add_post, add_workspace
from testing.fakes.slack_api import FakeSlack

TARGET_FRACTION = 0.9
MEMORY_BUDGET_MB = 300
TOKEN = "xoxb-benchmark"


def user_id(i: int) -> str:
    return f"U{i:07d}"


async def seed(sessions: object, count: int, clock: SystemClock) -> int:
    """A workspace, `count` opted-in members interested in the post's tag, and the post."""
    now = clock.now()
    # Working hours around the clock, every day, and no spread: the rate is what's measured.
    settings = WorkspaceSettings(
        quiet_hours_start="23:59",
        quiet_hours_end="00:00",
        quiet_weekends=False,
        share_window_hours=0,
    )
    async with transaction(sessions) as session:  # type: ignore[arg-type]
        workspace = await add_workspace(
            session, now, external_id="TBENCH", settings=settings.model_dump()
        )
        assert workspace.id is not None
        table = Member.__table__  # type: ignore[attr-defined]
        # A thousand rows at a time, so the seed's own peak does not hide the planning's.
        for start in range(0, count, 1000):
            rows = [
                {
                    "workspace_id": workspace.id,
                    "user_id": user_id(i),
                    "name": f"Colleague {i}",
                    "tz": "UTC",
                    "title": ("Account Executive", "Solutions Engineer", "Engineer")[i % 3],
                    "share_opt_in": True,
                    "interests": ["kubernetes"],
                    "is_platform_admin": False,
                    "is_bot": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(count, start + 1000))
            ]
            await session.exec(table.insert(), params=rows)
        author = (
            await session.exec(select(Member.id).where(Member.user_id == user_id(0)))
        ).scalar_one()
        post = await add_post(
            session,
            workspace,
            author,
            now,
            topic="Kubernetes upgrades",
            request_status="published",
            draft_status="approved",
            slug="zero-downtime-kubernetes-upgrades",
            title="Zero-downtime Kubernetes upgrades",
            summary="Surge upgrades, PodDisruptionBudgets and a rollback plan.",
            canonical_url="https://blog.example.com/k8s",
            captions=["How we upgrade Kubernetes with zero downtime", "Our upgrade checklist"],
            tags=["kubernetes"],
        )
        session.add(Distribution(workspace_id=workspace.id, post_id=post.id or 0, created_at=now))
        return workspace.id


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(count: int, limit: float, postgres: bool, concurrency: int) -> Figures:
    clock = SystemClock()
    fake = FakeSlack(rate_limit=limit)
    await fake.start()
    async with database(postgres) as url:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            workspace_id = await seed(sessions, count, clock)
            rss_before = peak_rss_mb()
            planning = Stopwatch()
            async with transaction(sessions) as session:
                workspace = await session.get(Workspace, workspace_id)
                assert workspace is not None
                planned = await distribution.sweep(Scope(session, clock, Config(), workspace))
            plan_seconds = planning()
            async with engine.connect() as conn:
                suggestions = int(
                    (
                        await conn.execute(select(func.count()).select_from(ShareSuggestion))
                    ).scalar_one()
                )
            wall, statuses = await send_all(engine, clock, fake, limit, concurrency, planned)
        finally:
            await engine.dispose()
            await fake.close()

    delivered = fake.calls_to("chat.postMessage")
    delivery = Delivery.of(fake, {user_id(i) for i in range(count)}, statuses)
    achieved, lost, duplicated = delivery.achieved, delivery.lost, delivery.duplicated
    fraction = achieved / limit
    peak = peak_rss_mb()
    captions = Counter(
        next(b["text"]["text"] for b in c.args["blocks"] if "Suggested caption" in str(b))
        for c in delivered
    )
    return {
        "database": "postgresql" if postgres else "sqlite",
        "recipients planned": planned,
        "share suggestions written": suggestions,
        "planning (s)": round(plan_seconds, 2),
        "API limit (calls/s, baseline)": limit,
        "achieved (calls/s)": round(achieved, 2),
        "achieved / limit": round(fraction, 3),
        "target ≥ 0.9": verdict(fraction, TARGET_FRACTION),
        "lost": lost,
        "duplicated": duplicated,
        "429 answers": len(fake.calls_to("chat.postMessage:limited")),
        "busiest second at the API (calls)": busiest_second(delivery.times),
        "distinct captions sent": len(captions),
        "peak RSS before planning (MB)": round(rss_before, 1),
        "peak RSS during fan-out (MB)": round(peak, 1),
        f"target < {MEMORY_BUDGET_MB} MB": verdict(peak, MEMORY_BUDGET_MB, at_most=True),
        "rows by status": dict(statuses),
        "wall time (s)": round(wall, 1),
    }


async def plan_only(count: int, postgres: bool) -> dict[str, float]:
    """Seed `count` recipients and plan the fan-out; seconds and peak memory growth (MB)."""
    clock = SystemClock()
    async with database(postgres) as url:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            workspace_id = await seed(sessions, count, clock)
            rss_before = peak_rss_mb()
            planning = Stopwatch()
            async with transaction(sessions) as session:
                workspace = await session.get(Workspace, workspace_id)
                assert workspace is not None
                planned = await distribution.sweep(Scope(session, clock, Config(), workspace))
            seconds = planning()
            assert planned == count, (planned, count)
        finally:
            await engine.dispose()
    return {
        "seconds": seconds,
        "peak_growth_mb": peak_rss_mb() - rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def growth(sizes: list[int], postgres: bool) -> Figures:
    """Each size planned in a fresh process (peak memory is per process); ratios to the
    smallest, which is the baseline: linear growth is a time ratio equal to the size ratio."""
    import json
    import subprocess
    import sys

    runs: dict[int, dict[str, float]] = {}
    for size in sizes:
        command = [sys.executable, "-m", "benchmarks.fanout", "--plan-only", "--count", str(size)]
        output = subprocess.run(
            command + (["--postgres"] if postgres else []),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs[size] = json.loads(output.strip().splitlines()[-1])
        print(f"  {size:>7} recipients: {runs[size]}", flush=True)
    base = sizes[0]
    figures: Figures = {"database": "postgresql" if postgres else "sqlite"}
    for size in sizes:
        run = runs[size]
        figures[f"{size:,}: planning (s)"] = round(run["seconds"], 2)
        figures[f"{size:,}: peak memory growth while planning (MB)"] = round(
            run["peak_growth_mb"], 1
        )
        figures[f"{size:,}: peak RSS of the process (MB)"] = round(run["peak_rss_mb"], 1)
        figures[f"{size:,}: size ÷ {base:,}"] = size / base
        figures[f"{size:,}: time ÷ {base:,}'s"] = round(run["seconds"] / runs[base]["seconds"], 2)
        figures[f"{size:,}: time per recipient ÷ {base:,}'s"] = round(
            (run["seconds"] / size) / (runs[base]["seconds"] / base), 2
        )
    return figures


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks fanout", description=__doc__)
    parser.add_argument("--count", type=int, default=5_000, help="recipients (5,000)")
    parser.add_argument("--limit", type=float, default=50.0, help="API calls/s allowed (50)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight (8)")
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL")
    parser.add_argument(
        "--growth",
        default=None,
        metavar="N,N,…",
        help="plan fan-outs of these sizes (each in a fresh process, nothing sent) and report "
        "how time and peak memory grow, e.g. 1000,10000,50000",
    )
    parser.add_argument("--plan-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    if args.plan_only:
        import json

        print(json.dumps(asyncio.run(plan_only(args.count, args.postgres))))
        return {}
    if args.growth:
        sizes = [int(n) for n in args.growth.split(",")]
        figures = growth(sizes, args.postgres)
        report("fanout-growth", figures)
        return figures
    logging.getLogger("slack_sdk").setLevel(logging.ERROR)
    print(f"fanout: a post to {args.count} people at {args.limit:g} calls/s")
    figures = asyncio.run(measure(args.count, args.limit, args.postgres, args.concurrency))
    report("fanout", figures)
    return figures


if __name__ == "__main__":
    main()
