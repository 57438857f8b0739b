"""`flywheel`: the command line of CONTRACT.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot.settings import ConfigurationError, Settings, load_settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flywheel", description="Employee-advocacy content loop for Slack and Teams."
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("run", help="web server + outbox worker in one process (the default)")
    sub.add_parser("serve", help="web server only")
    sub.add_parser("worker", help="outbox dispatcher only")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (safe to repeat)")
    experts = sub.add_parser("experts", help="the expert directory")
    experts_sub = experts.add_subparsers(dest="experts_command", required=True)
    load = experts_sub.add_parser("import", help="bulk-load expert profiles from a CSV file")
    load.add_argument("file", help="CSV with the columns email, name, topics, bio, capacity")
    load.add_argument("--workspace", help="the Slack team id (or console workspace) to load into")
    console = sub.add_parser("console", help="chat with the bot in a terminal, no platform needed")
    console.add_argument("--as", dest="user", default=None, help="the demo user to start as")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"flywheel: configuration error: {error}", file=sys.stderr)
        return 2
    command = args.command or "run"
    from bot import logs

    logs.configure(settings.log_level)
    if command == "console" or (command == "run" and not settings.slack_configured):
        # The terminal belongs to the conversation: logs go to a file from the start.
        from adapters.console.session import log_to_file

        log_to_file()
    try:
        return asyncio.run(_dispatch(command, args, settings))
    except KeyboardInterrupt:
        return 130


async def _dispatch(command: str, args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build, run
    from storage.migrate import upgrade

    flywheel = build(settings)
    if command == "db":
        await upgrade(flywheel.engine)
        await flywheel.close()
        print("database is up to date")
        return 0
    if command == "experts":
        from bot.importer import import_file

        await upgrade(flywheel.engine)
        code: int = await import_file(flywheel, args.file, workspace=args.workspace)
        await flywheel.close()
        return code
    if command == "console" or (command == "run" and not settings.slack_configured):
        from adapters.console.session import run_console

        await upgrade(flywheel.engine)
        return int(await run_console(flywheel, user=getattr(args, "user", None)))
    await run(flywheel, serve=command in ("run", "serve"), work=command in ("run", "worker"))
    return 0
