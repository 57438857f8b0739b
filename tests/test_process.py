"""The real process: `flywheel run` starts, answers health checks, and stops on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from storage.db import create_engine
from storage.migrate import upgrade
from testing.processes import BOT_TOKEN, SIGNING_SECRET, flywheel_run


async def test_serve_answers_health_checks_and_stops_gracefully(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    engine = create_engine(database)
    await upgrade(engine)
    await engine.dispose()
    async with flywheel_run(tmp_path, database) as running:
        async with aiohttp.ClientSession() as http:
            assert await running.ready(http) == 200
            async with http.get(f"{running.base}/metrics") as response:
                assert "flywheel_outbox_rows" in await response.text()
        assert await running.terminate() == 0
    log = running.stderr
    assert '"event": "shutdown.finished"' in log
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log
