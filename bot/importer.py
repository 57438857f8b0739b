"""`flywheel experts import FILE.csv`: read the file, pick the workspace, print the report."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Flywheel
from handlers.core.interactions import Origin
from handlers.core.members import ensure_workspace
from handlers.routing.experts import check_columns, import_experts
from storage.db import transaction
from storage.models import Workspace

MAX_ROWS = 10_000


async def import_file(flywheel: Flywheel, path: str, *, workspace: str | None) -> int:
    """Import a CSV of experts; exit 0 if every row was taken, 1 if some were not, 2 on error."""
    try:
        # A one-off read at the start of a command-line run: nothing else waits on the loop.
        text = Path(path).read_text(encoding="utf-8-sig")  # noqa: ASYNC240
    except (OSError, UnicodeDecodeError) as error:
        print(f"flywheel: cannot read {path}: {error}", file=sys.stderr)
        return 2
    reader = csv.DictReader(text.splitlines())
    problem = check_columns(reader.fieldnames)
    if problem:
        print(f"flywheel: {path}: {problem}", file=sys.stderr)
        return 2
    rows = [
        (line, {key.strip().lower(): value for key, value in row.items() if key})
        for line, row in enumerate(reader, start=2)
    ]
    if len(rows) > MAX_ROWS:
        print(
            f"flywheel: {path}: {len(rows)} rows; split the file (at most {MAX_ROWS})",
            file=sys.stderr,
        )
        return 2
    async with transaction(flywheel.sessions) as session:
        target = await _workspace(flywheel, session, workspace)
        if isinstance(target, str):
            print(f"flywheel: {target}", file=sys.stderr)
            return 2
        report = await import_experts(
            session,
            target,
            rows,
            directory=flywheel.router.directories.get(target.platform),
            now=flywheel.clock.now(),
        )
    print(report.summary())
    return 1 if report.problems else 0


async def _workspace(
    flywheel: Flywheel, session: AsyncSession, wanted: str | None
) -> Workspace | str:
    """The named workspace, the only one there is, or Slack's own team; else why not."""
    known = list((await session.exec(select(Workspace))).all())
    if wanted:
        for workspace in known:
            if workspace.external_id == wanted:
                return workspace
        if flywheel.slack is None:
            names = ", ".join(w.external_id for w in known) or "none"
            return f"no workspace {wanted!r} (known: {names})"
        team = wanted
    elif len(known) == 1:
        return known[0]
    elif not known and flywheel.slack is not None:
        team = await flywheel.slack.team_id()
    else:
        names = ", ".join(f"{w.external_id} ({w.platform})" for w in known) or "none yet"
        return f"choose the workspace with --workspace (known: {names})"
    return await ensure_workspace(
        session, Origin(platform="slack", workspace_id=team), flywheel.clock.now()
    )
