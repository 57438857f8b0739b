"""The real process: `flywheel serve` starts, answers health checks, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from storage.db import create_engine
from storage.migrate import upgrade


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_answers_health_checks_and_stops_gracefully(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    engine = create_engine(database)
    await upgrade(engine)
    await engine.dispose()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "MICROSOFT_", "FLYWHEEL_", "OPENAI_"))
    }
    env.update(
        DATABASE_URL=database,
        PORT=str(port),
        SLACK_BOT_TOKEN="xoxb-process-test",
        SLACK_SIGNING_SECRET="process-test-secret",
        FLYWHEEL_SECRET_KEY="process-test-key-0123456789",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        ready = response.status
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("flywheel run never answered")
            assert ready == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "flywheel_outbox_rows" in await response.text()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    log = stderr.decode()
    assert '"event": "shutdown.finished"' in log
    assert "xoxb-process-test" not in log and "process-test-secret" not in log
