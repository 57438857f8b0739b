"""The Teams app package: `manifest.json` and the two icons, zipped, ready to upload.

The manifest follows schema v1.17 and declares what the Teams adapter serves: one bot
(personal chats and teams) with the chat commands, and the message action "Request
content" on any message. The zip is deterministic: the same settings give the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.teams.icons import ACCENT, color_icon, outline_icon

MANIFEST_VERSION = "1.17"
MANIFEST_SCHEMA = (
    "https://developer.microsoft.com/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
)
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
# Zip entries carry a date; a fixed one keeps the package byte-for-byte reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

SHORT_NAME = "Flywheel"
FULL_NAME = "Flywheel — content requests, experts and sharing"
SHORT_DESCRIPTION = "Ask for content, get experts writing it, share it, see what it did."
FULL_DESCRIPTION = (
    "Flywheel runs your company's content loop in Teams. Anyone asks for content where "
    "they already work; similar requests gather +1s instead of duplicates; Flywheel finds "
    "the colleagues who know the topic and nudges them to draft it, with AI help if you "
    "want it; a reviewer approves; everyone gets the approved post with one-click share "
    "buttons and a personal tracked link; and each week Flywheel reports what the content "
    'did. Use "Request content" on any message to turn a question into a request, and '
    '"Share this with the company" to share the link in it.'
)

# The chat vocabulary of the contract, in the order `help` lists it.
COMMANDS = (
    ("request", "Ask for content: request [topic]"),
    ("expert", "Create or edit my expert profile: topics, bio, capacity, snooze"),
    ("win", "Log a win that content helped with"),
    ("stats", "My impact and the program's, this week"),
    ("find", "Search approved posts to share: find <words>"),
    ("share", "Share existing content by its link: share <url>"),
    ("digest preview", "Show me the next weekly digest"),
    ("admin", "Workspace settings (admins only)"),
    ("help", "Everything Flywheel can do"),
)
SCOPES = ("personal", "team")
REQUEST_FROM_MESSAGE = {
    "id": "request_from_message",
    "type": "action",
    "title": "Request content",
    "description": "Ask for content about this message",
    "context": ["message"],
    "fetchTask": True,
}

SHARE_FROM_MESSAGE = {
    "id": "share_from_message",
    "type": "action",
    "title": "Share this with the company",
    "description": "Share the link in this message with colleagues",
    "context": ["message"],
    "fetchTask": True,
}

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
DEVELOPER_NAME = 32


class PackageError(ValueError):
    """The package cannot be built as asked; the message names what to fix."""


@dataclass(frozen=True, slots=True)
class AppInfo:
    """What the manifest says about this installation of Flywheel."""

    app_id: str
    base_url: str
    version: str = "1.0.0"
    developer: str = "Flywheel"
    website_url: str | None = None
    privacy_url: str | None = None
    terms_url: str | None = None

    def check(self) -> None:
        """Raise PackageError naming the first setting Teams would refuse."""
        if not self.app_id:
            raise PackageError("MICROSOFT_APP_ID is missing (the bot's Microsoft app ID)")
        if not _GUID.fullmatch(self.app_id):
            raise PackageError(f"MICROSOFT_APP_ID must be a GUID, not {self.app_id!r}")
        _https(self.base_url, "PUBLIC_BASE_URL")
        for url, what in (
            (self.website_url, "the website URL"),
            (self.privacy_url, "the privacy URL"),
            (self.terms_url, "the terms-of-use URL"),
        ):
            if url is not None:
                _https(url, what)
        if not _VERSION.fullmatch(self.version):
            raise PackageError(f"the app version must look like 1.2.3, not {self.version!r}")
        if not self.developer.strip() or len(self.developer) > DEVELOPER_NAME:
            raise PackageError(f"the developer name must be 1 to {DEVELOPER_NAME} characters")

    @property
    def domain(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def _https(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise PackageError(f"{what} must be an https:// URL (Teams requires it), not {url!r}")


def manifest(info: AppInfo) -> dict[str, Any]:
    """The app manifest (schema v1.17) for this bot."""
    info.check()
    website = info.website_url or info.base_url
    commands = [{"title": title, "description": text} for title, text in COMMANDS]
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": info.version,
        # One bot per app: the app shares the bot's id, as Teams' own bot samples do.
        "id": info.app_id,
        "developer": {
            "name": info.developer.strip(),
            "websiteUrl": website,
            "privacyUrl": info.privacy_url or website,
            "termsOfUseUrl": info.terms_url or website,
        },
        "name": {"short": SHORT_NAME, "full": FULL_NAME},
        "description": {"short": SHORT_DESCRIPTION, "full": FULL_DESCRIPTION},
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": ACCENT,
        "bots": [
            {
                "botId": info.app_id,
                "scopes": list(SCOPES),
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": [scope], "commands": commands} for scope in SCOPES],
            }
        ],
        "composeExtensions": [
            {
                "botId": info.app_id,
                "commands": [dict(REQUEST_FROM_MESSAGE), dict(SHARE_FROM_MESSAGE)],
            }
        ],
        "validDomains": [info.domain],
    }


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    return entry


def package(info: AppInfo) -> bytes:
    """The zip Teams takes: manifest.json, color.png and outline.png at its root."""
    document = json.dumps(manifest(info), indent=2, ensure_ascii=False) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(_entry("manifest.json"), document.encode())
        archive.writestr(_entry(COLOR_ICON), color_icon())
        archive.writestr(_entry(OUTLINE_ICON), outline_icon())
    return out.getvalue()


def write_package(path: str | os.PathLike[str], info: AppInfo) -> Path:
    """Build the package and write it to `path` (a .zip in an existing folder), atomically."""
    info.check()
    target = Path(path)
    if target.suffix.lower() != ".zip":
        raise PackageError(f"the output must be a .zip file, not {str(target)!r}")
    if target.is_dir():
        raise PackageError(f"{str(target)!r} is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise PackageError(f"folder {str(folder)!r} does not exist")
    data = package(info)
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".teams-package-", suffix=".zip")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise PackageError(f"cannot write {str(target)!r}: {error.strerror or error}") from None
    return target
