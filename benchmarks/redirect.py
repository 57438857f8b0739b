"""Redirect: `GET /r/{code}` through `flywheel serve` against a bare aiohttp 302, same run.

Two servers besides this process: `flywheel serve` itself (the real command, on a temporary
SQLite database seeded with one post and a tracked link per sharer and network) and a bare
aiohttp application whose `/r/{code}` handler looks the code up in a dict and answers the
same 302 with the same Location, nothing else (the baseline). The same load generator (an
aiohttp ClientSession with N concurrent workers, closed loop, redirects not followed) drives
both, alternating rounds. Visitors are browsers with a few hundred different user agents,
so clicks, repeats and new visitors all occur.

Figures: requests per second through Flywheel as a fraction of the bare handler's (target
≥ 0.5), and no click lost: after the runs, Flywheel is stopped with SIGTERM (its graceful
shutdown writes the clicks still buffered) and the click rows are counted against the 302
answers it gave; the clicks that count (not repeats) are checked against the distinct
(link, visitor) pairs sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import POSTGRES_URL, ROOT, Figures, median, percentile, report, verdict

TARGET_RATIO = 0.5
PUBLIC_BASE_URL = "https://go.acme.test"
SECRET_KEY = "benchmark-secret-key-0123456789abcdef"


# -- the bare baseline, in a process of its own ---------------------------------------------


def _serve_bare(port: int, locations_file: str) -> None:
    """A bare aiohttp app answering `/r/{code}` with the same 302 Flywheel gives."""
    from aiohttp import web

    locations: dict[str, str] = json.loads(Path(locations_file).read_text())

    async def redirect(request: web.Request) -> web.Response:
        location = locations.get(request.match_info["code"])
        if location is None:
            return web.Response(status=404)
        return web.Response(status=302, headers={"Location": location})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/r/{code}", redirect)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- set-up ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(database_url: str, sharers: int) -> dict[str, str]:
    """One workspace, one post, a link per sharer and network; code → Location."""
    from datetime import UTC, datetime

    from handlers.core.context import Config, Scope
    from handlers.core.ports import SystemClock
    from handlers.sharing import tracked_links
    from storage.db import create_engine, session_factory, transaction
    from testing.builders import add_members, add_post, add_workspace

    engine = create_engine(database_url)
    now = datetime.now(UTC)
    async with transaction(session_factory(engine)) as session:
        workspace = await add_workspace(session, now, external_id="TBENCH")
        people = await add_members(session, workspace, (f"U{n:05d}" for n in range(sharers)), now)
        post = await add_post(
            session,
            workspace,
            people[0],
            now,
            topic="Zero-downtime migrations",
            slug="zero-downtime-migrations",
            title="Zero-downtime migrations",
            body="How we moved without a minute of downtime.",
            canonical_url="https://blog.acme.test/zero-downtime-migrations?ref=bench",
        )
        scope = Scope(session, SystemClock(), Config(public_base_url=PUBLIC_BASE_URL), workspace)
        links = await tracked_links.links_for(scope, post, people, tracked_links.NETWORKS)
        locations = {
            link.code: tracked_links.destination(post, link.network, PUBLIC_BASE_URL)
            for link in links.values()
        }
    await engine.dispose()
    return locations


async def _wait_healthy(url: str, process: subprocess.Popen[bytes], within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url} exited with code {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} not healthy after {within} s")


# -- the load generator ---------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wrong_location: int = 0
    sent: set[tuple[str, str]] = field(default_factory=set)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds


class Visitors:
    """Codes and browser user agents, in a fixed rotation: some visitors come back."""

    def __init__(self, locations: dict[str, str], agents: int) -> None:
        self.codes = list(locations)
        self.locations = locations
        self.agents = [
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/131.0.{n}.0 Safari/537.36"
            for n in range(agents)
        ]
        self.counter = itertools.count()

    def next(self) -> tuple[str, str]:
        n = next(self.counter)
        return self.codes[n % len(self.codes)], self.agents[(n // 7) % len(self.agents)]


async def closed_loop(base: str, visitors: Visitors, workers: int, seconds: float) -> Run:
    """`workers` clients, each sending the next request as soon as the last is answered."""
    run = Run(seconds)
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                code, agent = visitors.next()
                started = time.perf_counter()
                try:
                    async with http.get(
                        f"{base}/r/{code}",
                        headers={"User-Agent": agent},
                        allow_redirects=False,
                    ) as response:
                        await response.read()
                        status, location = response.status, response.headers.get("Location")
                except aiohttp.ClientError:
                    run.errors += 1
                    continue
                if status != 302:
                    run.errors += 1
                elif location != visitors.locations[code]:
                    run.wrong_location += 1
                else:
                    run.latencies.append(time.perf_counter() - started)
                    run.sent.add((code, agent))

        await asyncio.gather(*(worker() for _ in range(workers)))
    return run


# -- the benchmark --------------------------------------------------------------------------


async def _count_clicks(database_url: str) -> tuple[int, int, int]:
    """Click rows, those that count (not previews, not repeats), and previews."""
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(database_url)
    async with engine.connect() as conn:
        total, counted, previews = (
            await conn.execute(
                text(
                    "SELECT count(*),"
                    " sum(CASE WHEN NOT is_preview AND NOT is_repeat THEN 1 ELSE 0 END),"
                    " sum(CASE WHEN is_preview THEN 1 ELSE 0 END) FROM click"
                )
            )
        ).one()
    await engine.dispose()
    return int(total), int(counted or 0), int(previews or 0)


@contextlib.contextmanager
def _database(folder: Path, postgres: bool) -> Iterator[str]:
    """An empty database: a SQLite file in `folder`, or a PostgreSQL schema of its own."""
    if not postgres:
        yield f"sqlite+aiosqlite:///{folder / 'redirect.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    parsed = make_url(POSTGRES_URL)
    conninfo: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        "autocommit": True,
    }
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**conninfo) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _environment(database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "MICROSOFT_", "OPENAI_", "FLYWHEEL_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        FLYWHEEL_SECRET_KEY=SECRET_KEY,
        HOST="127.0.0.1",
        PORT=str(_free_port()),
    )
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str


@contextlib.contextmanager
def _servers(folder: Path, env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    """`flywheel serve` and the bare handler; whatever is still running is stopped after."""
    flywheel = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=folder,  # no stray .env from the checkout
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "flywheel.log").open("w"),
    )
    port = _free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.redirect",
            "--serve",
            str(port),
            str(folder / "lo.json"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield (
            Server(flywheel, f"http://127.0.0.1:{env['PORT']}"),
            Server(bare, f"http://127.0.0.1:{port}"),
        )
    finally:
        for process in (flywheel, bare):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


async def _load(
    flywheel: Server, bare: Server, visitors: Visitors, workers: int, seconds: float, rounds: int
) -> tuple[list[Run], list[Run]]:
    """Warm both up, then alternate rounds; Flywheel's warm-up run comes first in its list."""
    await _wait_healthy(flywheel.url, flywheel.process)
    await _wait_healthy(bare.url, bare.process)
    # Flywheel's first look-up of each code goes to the database; later ones do not.
    flywheel_runs = [await closed_loop(flywheel.url, visitors, workers, 2.0)]
    await closed_loop(bare.url, visitors, workers, 2.0)
    bare_runs: list[Run] = []
    for _ in range(rounds):
        bare_runs.append(await closed_loop(bare.url, visitors, workers, seconds))
        flywheel_runs.append(await closed_loop(flywheel.url, visitors, workers, seconds))
    return flywheel_runs, bare_runs


def measure(
    workers: int, seconds: float, rounds: int, sharers: int, agents: int, postgres: bool
) -> Figures:
    with (
        tempfile.TemporaryDirectory(prefix="flywheel-bench-") as name,
        _database(Path(name), postgres) as database_url,
    ):
        folder = Path(name)
        env = _environment(database_url)
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )
        locations = asyncio.run(_seed(env["DATABASE_URL"], sharers))
        (folder / "lo.json").write_text(json.dumps(locations))
        with _servers(folder, env) as (flywheel, bare):
            flywheel_runs, bare_runs = asyncio.run(
                _load(flywheel, bare, Visitors(locations, agents), workers, seconds, rounds)
            )
            # A graceful stop writes the clicks still buffered; none may be missing after.
            stopping = time.perf_counter()
            flywheel.process.send_signal(signal.SIGTERM)
            code = flywheel.process.wait(60)
            stop_seconds = time.perf_counter() - stopping
        rows, counted, previews = asyncio.run(_count_clicks(database_url))

    measured = flywheel_runs[1:]
    answered = sum(len(r.latencies) for r in flywheel_runs)
    distinct = len(set().union(*(r.sent for r in flywheel_runs)))
    ours = median([r.per_second for r in measured])
    base = median([r.per_second for r in bare_runs])
    ratio = ours / base
    latencies = [latency for r in measured for latency in r.latencies]
    return {
        "load": f"{workers} concurrent workers, {seconds:g} s × {rounds} rounds",
        "database": "postgresql" if postgres else "sqlite",
        "links": len(locations),
        "bare aiohttp 302 (req/s, baseline)": round(base, 1),
        "Flywheel /r/{code} (req/s)": round(ours, 1),
        "Flywheel / bare": round(ratio, 3),
        "target ≥ 0.5": verdict(ratio, TARGET_RATIO),
        "Flywheel p50 (ms)": round(percentile(latencies, 0.5) * 1000, 2),
        "Flywheel p99 (ms)": round(percentile(latencies, 0.99) * 1000, 2),
        "302 answers from Flywheel (warm-up included)": answered,
        "click rows written": rows,
        "lost (answers − rows)": answered - rows,
        "counted clicks": counted,
        "distinct (link, visitor) pairs sent": distinct,
        "previews": previews,
        "SIGTERM to exit (s)": round(stop_seconds, 2),
        "exit code": code,
        "errors (non-302 or wrong Location)": sum(
            r.errors + r.wrong_location for r in [*flywheel_runs, *bare_runs]
        ),
    }


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks redirect", description=__doc__)
    parser.add_argument("--workers", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--sharers", type=int, default=250, help="sharers, 4 links each (250)")
    parser.add_argument("--agents", type=int, default=300, help="distinct user agents (300)")
    parser.add_argument("--postgres", action="store_true", help=f"use {POSTGRES_URL}")
    args = parser.parse_args(argv)
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"redirect: {args.workers} workers, {args.seconds:g} s × {args.rounds} rounds, {database}"
    )
    figures = measure(
        args.workers, args.seconds, args.rounds, args.sharers, args.agents, args.postgres
    )
    report("redirect", figures)
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve_bare(int(sys.argv[2]), sys.argv[3])
    else:
        main()
