"""Inbound: signed slash commands through `POST /slack/events`, Flywheel against bare Bolt.

Three processes besides this one: the fake Slack Web API, `flywheel serve` (the real
command, so the app comes from `bot.app.build` with Slack settings pointed at the fake, on
a temporary SQLite database, or with `--postgres` a PostgreSQL schema of its own), and a
bare slack-bolt `AsyncApp` behind `slack_bolt.adapter.aiohttp` on its own aiohttp server,
whose `/flywheel` listener only acknowledges (set up as Flywheel sets up Bolt, with
`process_before_response=True`). Each has its own process and event loop, so the fake's
work for `views.open` never delays the app's acknowledgements except by sharing the CPUs.
The same load generator (an aiohttp ClientSession with N concurrent workers) drives both
in the same run.

Figures: requests per second for `/flywheel help` (an acknowledgement carrying a message)
through Flywheel as a fraction of bare Bolt (target ≥ 0.6); the p99 acknowledgement latency
of `/flywheel help` at a fixed 100 requests/s (target < 100 ms); and, reported on their
own, the same two figures for `/flywheel request x`, which opens a modal through the API.
Also the CPU time each server spent per request during the throughput runs (Linux only):
it depends much less than requests per second on how much CPU the load generator and the
rest of the machine leave the server, so it is the steadier comparison on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from benchmarks import POSTGRES_URL, ROOT, Figures, median, percentile, report, verdict

SIGNING_SECRET = "benchmark-signing-secret-0123456789"
BOT_TOKEN = "xoxb-benchmark-token"
TEAM_ID = "T0001"
USERS = [f"UBENCH{i:03d}" for i in range(20)]
TARGET_RATIO = 0.6
TARGET_P99_MS = 100.0


# -- the servers, each in a process of its own ----------------------------------------------


def _serve_fake() -> None:
    """Run the fake Slack Web API; print its base URL, serve until terminated."""
    from testing.fakes.slack_api import FakeSlack

    async def serve() -> None:
        fake = FakeSlack(team_id=TEAM_ID)
        for user in USERS:
            fake.add_user(user, user.lower(), email=f"{user.lower()}@acme.test")
        await fake.start()
        # Recorded calls would grow without bound over a long run; nothing reads them here.
        fake.calls = _Discard()
        print(f"READY {fake.url} {fake.response_url('bench')}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


class _Discard(list):  # type: ignore[type-arg]
    def append(self, _: object) -> None:
        pass


def _serve_bolt(port: int, api_url: str) -> None:
    """A bare Bolt app whose `/flywheel` listener only acknowledges."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    async def serve() -> None:
        app = AsyncApp(
            token=BOT_TOKEN,
            signing_secret=SIGNING_SECRET,
            client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
            # As Flywheel runs Bolt. Bolt's default instead polls for the acknowledgement
            # every 10 ms, which caps it by latency rather than work and would make the
            # ratio depend on the number of workers.
            process_before_response=True,
        )

        @app.command("/flywheel")
        async def only_ack(ack: object) -> None:
            await ack()  # type: ignore[operator]

        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(
                await app.async_dispatch(await to_bolt_request(request))
            )

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        web_app = web.Application()
        web_app.router.add_post("/slack/events", events)
        web_app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    url: str
    extra: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _ready_line(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if not line or line[0] != "READY":
        raise RuntimeError(f"server failed to start (exit code {process.poll()})")
    return line[1:]


async def _wait_healthy(url: str, process: subprocess.Popen[str], within: float = 30) -> None:
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


@contextlib.asynccontextmanager
async def servers(postgres: bool) -> AsyncIterator[dict[str, Server]]:
    """Start the fake API, `flywheel serve` and bare Bolt; stop them all afterwards."""
    # Here rather than at the top: the bare Bolt and fake API processes run this module too,
    # and the baseline should not carry the application's imports.
    from benchmarks.outbox import database

    async with database(postgres) as url:
        with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as folder:
            running: dict[str, Server] = {}
            try:
                yield _start(Path(folder), url, running)
            finally:
                # Before the database and the folder go away.
                for server in running.values():
                    server.process.terminate()
                for server in running.values():
                    try:
                        server.process.wait(10)
                    except subprocess.TimeoutExpired:
                        server.process.kill()


def _start(folder: Path, database_url: str, running: dict[str, Server]) -> dict[str, Server]:
    fake = _spawn(["-m", "benchmarks.inbound", "--serve", "fake"])
    api_url, response_url = _ready_line(fake)
    running["fake"] = Server("fake", fake, api_url, [response_url])

    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "FLYWHEEL_SECRET_KEY": "benchmark-secret-key-0123456789abcdef",
        "HOST": "127.0.0.1",
        "PORT": str(_free_port()),
    }
    flywheel = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=folder,  # no stray .env from the checkout
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=(folder / "flywheel.log").open("w"),
        text=True,
    )
    running["flywheel"] = Server("flywheel", flywheel, f"http://127.0.0.1:{env['PORT']}")

    port = _free_port()
    bolt = _spawn(["-m", "benchmarks.inbound", "--serve", "bolt", str(port), api_url])
    _ready_line(bolt)
    running["bolt"] = Server("bolt", bolt, f"http://127.0.0.1:{port}")
    return running


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far; None without Linux's /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which sits in parentheses and may contain spaces.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load generator ---------------------------------------------------------------------


class Requests:
    """Properly signed, form-encoded slash commands, as Slack sends them."""

    def __init__(self, text: str, response_url: str) -> None:
        self.text = text
        self.response_url = response_url
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.counter = itertools.count()

    def next(self) -> tuple[bytes, dict[str, str]]:
        n = next(self.counter)
        user = USERS[n % len(USERS)]
        body = urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM_ID,
                "team_domain": "acme",
                "channel_id": "C0GENERAL",
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/flywheel",
                "text": self.text,
                "api_app_id": "A0FLYWHEEL",
                "is_enterprise_install": "false",
                "response_url": self.response_url,
                "trigger_id": f"{n}.{int(time.time())}.bench",
            }
        ).encode()
        timestamp = str(int(time.time()))
        return body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=timestamp, body=body),
        }


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    # CPU time the server used during the run, where the platform tells.
    server_cpu: float | None = None

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        if self.server_cpu is None or not self.latencies:
            return float("nan")
        return self.server_cpu / len(self.latencies) * 1000

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000


async def _one(
    http: aiohttp.ClientSession, url: str, requests: Requests, check: Callable[[str], bool]
) -> float | None:
    body, headers = requests.next()
    started = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=headers) as response:
            text = await response.text()
            ok = response.status == 200 and check(text)
    except aiohttp.ClientError:
        return None
    return time.perf_counter() - started if ok else None


async def closed_loop(
    server: Server, requests: Requests, check: Callable[[str], bool], workers: int, seconds: float
) -> Run:
    """`workers` clients each sending the next request as soon as the last is answered."""
    url = server.url + "/slack/events"
    run = Run(seconds)
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as http:
        cpu_before = cpu_seconds(server.process.pid)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                latency = await _one(http, url, requests, check)
                if latency is None:
                    run.errors += 1
                else:
                    run.latencies.append(latency)

        await asyncio.gather(*(worker() for _ in range(workers)))
        cpu_after = cpu_seconds(server.process.pid)
    if cpu_before is not None and cpu_after is not None:
        run.server_cpu = cpu_after - cpu_before
    return run


async def fixed_rate(
    server: Server, requests: Requests, check: Callable[[str], bool], rate: float, seconds: float
) -> Run:
    """Open loop: a request every 1/`rate` s whatever the answers, so slowness shows as latency."""
    url = server.url + "/slack/events"
    run = Run(seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def fire() -> None:
            latency = await _one(http, url, requests, check)
            if latency is None:
                run.errors += 1
            else:
                run.latencies.append(latency)

        started = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire()))
        await asyncio.gather(*tasks)
    return run


# -- the benchmark --------------------------------------------------------------------------


def _acknowledged(text: str) -> bool:
    return True


def _helped(text: str) -> bool:
    return "request" in text  # the help text lists the commands


async def measure(
    workers: int, seconds: float, rate: float, rounds: int, postgres: bool = False
) -> Figures:
    async with servers(postgres) as up:
        fake, flywheel, bolt = up["fake"], up["flywheel"], up["bolt"]
        await _wait_healthy(flywheel.url, flywheel.process)
        await _wait_healthy(bolt.url, bolt.process)
        response_url = fake.extra[0]
        help_ = Requests("help", response_url)
        modal = Requests("request x", response_url)

        # Warm both up (first-request work: auth.test, members created) before measuring.
        for server, check in ((bolt, _acknowledged), (flywheel, _helped)):
            await closed_loop(server, help_, check, workers, 2.0)
        await closed_loop(flywheel, modal, _acknowledged, workers, 2.0)

        bare_runs, flywheel_runs = [], []
        for _ in range(rounds):
            bare_runs.append(await closed_loop(bolt, help_, _acknowledged, workers, seconds))
            flywheel_runs.append(await closed_loop(flywheel, help_, _helped, workers, seconds))
        modal_run = await closed_loop(flywheel, modal, _acknowledged, workers, seconds)

        at_rate_help = await fixed_rate(flywheel, help_, _helped, rate, seconds)
        at_rate_bare = await fixed_rate(bolt, help_, _acknowledged, rate, seconds)
        at_rate_modal = await fixed_rate(flywheel, modal, _acknowledged, rate, seconds)

    bare = median([r.per_second for r in bare_runs])
    ours = median([r.per_second for r in flywheel_runs])
    ratio = ours / bare
    p99 = at_rate_help.p(0.99)
    bare_cpu = median([r.cpu_ms_per_request for r in bare_runs])
    help_cpu = median([r.cpu_ms_per_request for r in flywheel_runs])
    runs = [*bare_runs, *flywheel_runs, modal_run, at_rate_help, at_rate_bare, at_rate_modal]
    return {
        "load": f"{workers} concurrent workers, {seconds:g} s × {rounds} rounds",
        "database": "postgresql" if postgres else "sqlite",
        "bare Bolt, ack only (req/s, baseline)": round(bare, 1),
        "Flywheel /flywheel help (req/s)": round(ours, 1),
        "Flywheel / bare Bolt": round(ratio, 3),
        "target ≥ 0.6": verdict(ratio, TARGET_RATIO),
        f"help at {rate:g} req/s: p50 (ms)": round(at_rate_help.p(0.50), 1),
        f"help at {rate:g} req/s: p99 (ms)": round(p99, 1),
        "target p99 < 100 ms": verdict(p99, TARGET_P99_MS, at_most=True),
        f"bare Bolt at {rate:g} req/s: p99 (ms)": round(at_rate_bare.p(0.99), 1),
        "request x (modal via API) (req/s)": round(modal_run.per_second, 1),
        "request x / bare Bolt": round(modal_run.per_second / bare, 3),
        f"request x at {rate:g} req/s: p50 (ms)": round(at_rate_modal.p(0.50), 1),
        f"request x at {rate:g} req/s: p99 (ms)": round(at_rate_modal.p(0.99), 1),
        "server CPU per request, bare Bolt (ms)": round(bare_cpu, 3),
        "server CPU per request, help (ms)": round(help_cpu, 3),
        "server CPU per request, request x (ms)": round(modal_run.cpu_ms_per_request, 3),
        "bare Bolt's CPU ÷ Flywheel's, help": round(bare_cpu / help_cpu, 3),
        "errors (non-200 or wrong answer)": sum(r.errors for r in runs),
    }


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks inbound", description=__doc__)
    parser.add_argument("--workers", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run (10)")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed rate for p99 (100/s)")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds per app (2)")
    parser.add_argument(
        "--postgres", action="store_true", help=f"Flywheel on {POSTGRES_URL} (default SQLite)"
    )
    args = parser.parse_args(argv)
    print(f"inbound: {args.workers} workers, {args.seconds:g} s runs, p99 at {args.rate:g}/s")
    figures = asyncio.run(
        measure(args.workers, args.seconds, args.rate, args.rounds, args.postgres)
    )
    report("inbound", figures)
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        role = sys.argv[2]
        if role == "fake":
            _serve_fake()
        elif role == "bolt":
            _serve_bolt(int(sys.argv[3]), sys.argv[4])
        else:
            raise SystemExit(f"unknown server {role!r}")
    else:
        main()
