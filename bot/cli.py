"""`flywheel`: the command line of CONTRACT.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from bot.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from aiohttp import web

    from bot.app import Flywheel


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
    digest = sub.add_parser("digest", help="weekly digests")
    digest_sub = digest.add_subparsers(dest="digest_command", required=True)
    preview = digest_sub.add_parser("preview", help="print the next digest without posting")
    preview.add_argument(
        "--workspace",
        required=True,
        help="the platform's workspace id: a Slack team id, a Teams tenant id, or demo",
    )
    console = sub.add_parser("console", help="chat with the bot in a terminal, no platform needed")
    console.add_argument("--as", dest="user", default=None, help="the demo user to start as")
    console.add_argument(
        "--new",
        dest="empty",
        action="store_true",
        help="a new, empty workspace instead of the demo: a company's first day",
    )
    teams = sub.add_parser("teams-package", help="build the Teams app package (manifest + icons)")
    teams.add_argument("out", metavar="OUT.zip", help="where to write the package")
    teams.add_argument(
        "--app-version", default=None, help="the app's version (default: Flywheel's)"
    )
    teams.add_argument(
        "--developer", default="Flywheel", help="the publisher's name, up to 32 characters"
    )
    teams.add_argument(
        "--website", default=None, help="https URL of your support page (default: PUBLIC_BASE_URL)"
    )
    teams.add_argument(
        "--privacy", default=None, help="https URL of your privacy statement (default: the website)"
    )
    teams.add_argument(
        "--terms", default=None, help="https URL of your terms of use (default: the website)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "teams-package":
        return _teams_package(args)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"flywheel: configuration error: {error}", file=sys.stderr)
        return 2
    command = args.command or "run"
    from bot import logs

    logs.configure(settings.log_level)
    if command == "console" or (command == "run" and not settings.chat_configured):
        # The terminal belongs to the conversation: logs go to a file from the start.
        from adapters.console.logs import log_to_file

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
    if command in ("experts", "digest") and flywheel.slack is not None:
        # The bot token's workspace is known before anyone in it has spoken.
        await upgrade(flywheel.engine)
        await flywheel.slack.register_workspace()
    if command == "experts":
        from bot.importer import import_file

        await upgrade(flywheel.engine)
        code: int = await import_file(flywheel, args.file, workspace=args.workspace)
        await flywheel.close()
        return code
    if command == "digest":
        await upgrade(flywheel.engine)
        try:
            return await _digest_preview(flywheel, args.workspace)
        finally:
            await flywheel.close()
    if command == "console" or (command == "run" and not settings.chat_configured):
        from adapters.console.session import run_console

        await upgrade(flywheel.engine)
        # Tracked links, share buttons and digest pages printed in the console open in a
        # browser too; without a free port the conversation goes on without them.
        runner = await _serve_web(flywheel)
        try:
            return int(
                await run_console(
                    flywheel,
                    user=getattr(args, "user", None),
                    empty=bool(getattr(args, "empty", False)),
                )
            )
        finally:
            if runner is not None:
                await runner.cleanup()
    await run(flywheel, serve=command in ("run", "serve"), work=command in ("run", "worker"))
    return 0


async def _serve_web(flywheel: Flywheel) -> web.AppRunner | None:
    """The web routes on HOST:PORT beside the console; None when the port is taken."""
    from aiohttp import web

    runner = web.AppRunner(flywheel.web_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, flywheel.settings.host, flywheel.settings.port).start()
    except OSError as error:
        log = structlog.get_logger(__name__)
        log.warning("console.web_unavailable", port=flywheel.settings.port, error=str(error))
        await runner.cleanup()
        return None
    return runner


async def _digest_preview(flywheel: Flywheel, external_id: str) -> int:
    """`flywheel digest preview --workspace ID`: the coming digest, as terminal text."""
    from sqlmodel import select

    from adapters.console.render import render_message
    from handlers.core import workspace_settings
    from handlers.impact import digest_preview
    from storage.models import Workspace

    async with flywheel.sessions() as session:
        found = (
            await session.exec(select(Workspace).where(Workspace.external_id == external_id))
        ).all()
        if len(found) != 1:
            known = "no" if not found else "more than one"
            print(
                f"flywheel: {known} workspace with the id {external_id!r} (give a Slack team id, "
                "a Teams tenant id, or demo for the console)",
                file=sys.stderr,
            )
            return 2
        workspace = found[0]
        message = await digest_preview.preview(
            session,
            workspace.id or 0,
            workspace_settings.load(workspace),
            flywheel.clock.now(),
        )
    print("\n".join(render_message(message).lines))
    return 0


class _PackageSettings(Settings):
    """Settings for building the Teams package, which talks to no platform.

    Only the app id and the public URL matter, so the start-up checks that a platform is
    completely configured (password, secret key) do not apply.
    """

    def problem(self) -> str | None:
        return None


def _teams_package(args: argparse.Namespace) -> int:
    """`flywheel teams-package OUT.zip`: write the Teams app package."""
    from importlib.metadata import PackageNotFoundError, version

    from pydantic import ValidationError

    from adapters.teams.package import AppInfo, PackageError, write_package

    try:
        settings = _PackageSettings()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper()
        print(f"flywheel: configuration error: {where}: {first['msg']}", file=sys.stderr)
        return 2
    if args.app_version is None:
        try:
            args.app_version = version("flywheel")
        except PackageNotFoundError:
            args.app_version = "1.0.0"
    info = AppInfo(
        app_id=(settings.microsoft_app_id or "").strip(),
        base_url=settings.public_base_url or "",
        version=args.app_version,
        developer=args.developer,
        website_url=args.website,
        privacy_url=args.privacy,
        terms_url=args.terms,
    )
    try:
        path = write_package(args.out, info)
    except PackageError as error:
        print(f"flywheel: teams-package: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} (Teams app for bot {info.app_id}, version {info.version})")
    return 0
