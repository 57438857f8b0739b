"""Running the real `flywheel` process in tests: a clean environment, a port, a readiness wait."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

# The checkout under test: the process runs its code, whatever its working directory is and
# whichever copy of Flywheel is installed.
ROOT = Path(__file__).resolve().parent.parent
# The developer's own credentials must never reach a test process.
CONFIG_PREFIXES = ("SLACK_", "MICROSOFT_", "FLYWHEEL_", "OPENAI_")
BOT_TOKEN = "xoxb-process-test"
SIGNING_SECRET = "process-test-secret"


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any Flywheel configuration, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    """A `flywheel run` subprocess configured for Slack against an unreachable API."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.stderr = ""

    async def ready(self, http: aiohttp.ClientSession, path: str = "/readyz") -> int:
        """Wait until `path` answers; its status."""
        for _ in range(200):
            try:
                async with http.get(self.base + path) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError("flywheel run never answered")

    async def terminate(self) -> int:
        """SIGTERM, then wait for a graceful exit; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        # A graceful stop may spend the sends' grace and then the clicks' (20 s each).
        _, stderr = await asyncio.wait_for(self.process.communicate(), 60)

        self.stderr = stderr.decode()
        return int(self.process.returncode or 0)


@asynccontextmanager
async def flywheel_run(
    cwd: Path, database: str, *, slack: bool = True, **extra: str
) -> AsyncIterator[Running]:
    """Start `python -m bot run` on `database`; killed if the test leaves it running.

    With `slack`, Slack is configured against an unreachable API; `extra` adds variables.
    """
    port = free_port()
    slack_env = (
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
        }
        if slack
        else {}
    )
    env = clean_env(
        DATABASE_URL=database,
        PORT=str(port),
        FLYWHEEL_SECRET_KEY="process-test-key-0123456789",
        **slack_env,
        **extra,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Running(process, port)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class Process:
    """A real `flywheel` subprocess (`run`, `serve` or `worker`) whose log goes to a file, so
    a long run never blocks on a full pipe and the log can be read while it runs."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, event: str) -> int:
        """How many times the log has `event`."""
        return self.log().count(f'"event": "{event}"')

    async def ready(self, http: aiohttp.ClientSession, path: str = "/readyz") -> int:
        """Wait until `path` answers; its status."""
        for _ in range(600):
            if self.process.returncode is not None:
                raise AssertionError(
                    f"flywheel exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                async with http.get(self.base + path) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"flywheel never answered:\n{self.log()[-3000:]}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when a machine dies."""
        self.process.kill()
        await self.process.wait()

    async def terminate(self, within: float = 60) -> int:
        """SIGTERM, then wait for a graceful exit; the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), within)
        return int(self.process.returncode or 0)


class Processes:
    """Starts `flywheel` processes on one database; kills whatever is left at the end."""

    def __init__(self, cwd: Path, database: str, **env: str) -> None:
        self.cwd = cwd
        self.database = database
        self.env = env
        self.started: list[Process] = []

    async def start(self, command: str, **extra: str) -> Process:
        port = free_port()
        values = {
            "DATABASE_URL": self.database,
            "PORT": str(port),
            "FLYWHEEL_SECRET_KEY": "process-test-key-0123456789",
            **self.env,
            **extra,
        }
        if command == "worker":
            values.setdefault("FLYWHEEL_METRICS_PORT", str(port))
        log = self.cwd / f"{command}-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                command,
                cwd=self.cwd,
                env=clean_env(**values),
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        self.started.append(Process(process, port, log))
        return self.started[-1]

    async def close(self) -> None:
        for process in self.started:
            if process.process.returncode is None:
                process.process.kill()
                await process.process.wait()


@asynccontextmanager
async def processes(cwd: Path, database: str, **env: str) -> AsyncIterator[Processes]:
    """`Processes` for the length of a test."""
    group = Processes(cwd, database, **env)
    try:
        yield group
    finally:
        await group.close()
