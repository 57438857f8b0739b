"""The Teams app package: a manifest Teams' own schema accepts, the icons it asks for, a zip
laid out as it expects, and `flywheel teams-package` end to end."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image

from adapters.teams import icons
from adapters.teams.package import (
    COMMANDS,
    MANIFEST_VERSION,
    AppInfo,
    PackageError,
    manifest,
    package,
    write_package,
)
from bot.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "teams"
SCHEMA = FIXTURES / "MicrosoftTeams.v1.17.schema.json"
APP_ID = "8c4f2d1e-3b5a-4c6d-9e8f-0a1b2c3d4e5f"
BASE = "https://flywheel.example.com"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The schema says draft-04 but uses draft-06's `const` (for manifestVersion), which
    # Teams' own validator enforces; draft 7 reads every other keyword the same way.
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def info(**changes: Any) -> AppInfo:
    values: dict[str, Any] = {"app_id": APP_ID, "base_url": BASE, "version": "0.1.0"}
    return AppInfo(**{**values, **changes})


def test_the_manifest_is_valid_against_the_teams_schema(
    validator: jsonschema.protocols.Validator,
) -> None:
    document = manifest(info())
    errors = [e.message for e in validator.iter_errors(document)]
    assert errors == []
    assert document["manifestVersion"] == MANIFEST_VERSION == "1.17"
    assert document["$schema"].endswith("/v1.17/MicrosoftTeams.schema.json")


def test_the_schema_check_is_real(validator: jsonschema.protocols.Validator) -> None:
    """Deliberately wrong manifests fail, so the test above can fail too."""
    good = manifest(info())
    for broken in (
        {**good, "manifestVersion": "1.16"},
        {**good, "id": "not-a-guid"},
        {**good, "accentColor": "blue"},
        {**good, "bots": [{**good["bots"][0], "scopes": ["everywhere"]}]},
        {**good, "surprise": True},
    ):
        assert list(validator.iter_errors(broken)), broken


def test_the_bot_the_commands_and_the_message_action() -> None:
    document = manifest(info())
    (bot,) = document["bots"]
    assert bot["botId"] == APP_ID == document["id"]
    assert bot["scopes"] == ["personal", "team"]
    titles = [c["title"] for c in bot["commandLists"][0]["commands"]]
    assert titles == [
        "request",
        "expert",
        "win",
        "stats",
        "find",
        "share",
        "digest preview",
        "admin",
        "help",
    ]
    assert {tuple(lst["scopes"]) for lst in bot["commandLists"]} == {("personal",), ("team",)}
    for title, description in COMMANDS:
        assert len(title) <= 32 and 0 < len(description) <= 128
    (extension,) = document["composeExtensions"]
    assert extension["botId"] == APP_ID
    assert extension["commands"] == [
        {
            "id": "request_from_message",
            "type": "action",
            "title": "Request content",
            "description": "Ask for content about this message",
            "context": ["message"],
            "fetchTask": True,
        },
        {
            "id": "share_from_message",
            "type": "action",
            "title": "Share this with the company",
            "description": "Share the link in this message with colleagues",
            "context": ["message"],
            "fetchTask": True,
        },
    ]
    assert "webApplicationInfo" not in document
    assert "permissions" not in document


def test_names_descriptions_and_developer_fit_the_limits() -> None:
    document = manifest(info(developer="Example Corp", privacy_url="https://example.com/p"))
    assert len(document["name"]["short"]) <= 30 and len(document["name"]["full"]) <= 100
    assert len(document["description"]["short"]) <= 80
    assert len(document["description"]["full"]) <= 4000
    assert document["developer"] == {
        "name": "Example Corp",
        "websiteUrl": BASE,
        "privacyUrl": "https://example.com/p",
        "termsOfUseUrl": BASE,
    }


@pytest.mark.parametrize(
    ("base", "domain"),
    [
        ("https://flywheel.example.com", "flywheel.example.com"),
        ("https://Bot.Example.com:8443/flywheel/", "bot.example.com"),
        ("https://abc123.ngrok-free.app", "abc123.ngrok-free.app"),
    ],
)
def test_valid_domains_is_the_public_host(base: str, domain: str) -> None:
    assert manifest(info(base_url=base))["validDomains"] == [domain]


def test_icons_are_the_sizes_and_modes_teams_asks_for() -> None:
    color = Image.open(io.BytesIO(icons.color_icon()))
    assert (color.format, color.size, color.mode) == ("PNG", (192, 192), "RGB")
    # The accent fills the corners; the white mark sits in the middle.
    assert color.getpixel((2, 2)) == (0x24, 0x56, 0xA6)
    assert color.getpixel((96, 96)) == (255, 255, 255)

    outline = Image.open(io.BytesIO(icons.outline_icon()))
    assert (outline.format, outline.size, outline.mode) == ("PNG", (32, 32), "RGBA")
    raw = outline.tobytes()
    pixels = [tuple(raw[i : i + 4]) for i in range(0, len(raw), 4)]
    # White on transparent: every pixel is white, only its opacity varies.
    assert {p[:3] for p in pixels} == {(255, 255, 255)}
    alphas = [p[3] for p in pixels]
    assert alphas[0] == 0 and max(alphas) == 255
    assert 0.15 < sum(a > 127 for a in alphas) / len(alphas) < 0.6


def test_the_zip_has_the_three_files_at_its_root_and_is_reproducible() -> None:
    data = package(info())
    assert package(info()) == data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["manifest.json", "color.png", "outline.png"]
        assert archive.testzip() is None
        document = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == icons.color_icon()
        assert archive.read("outline.png") == icons.outline_icon()
    assert document == manifest(info())
    assert document["icons"] == {"color": "color.png", "outline": "outline.png"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"app_id": ""}, "MICROSOFT_APP_ID is missing"),
        ({"app_id": "my-bot"}, "MICROSOFT_APP_ID must be a GUID"),
        ({"base_url": ""}, "PUBLIC_BASE_URL must be an https:// URL"),
        ({"base_url": "http://flywheel.example.com"}, "PUBLIC_BASE_URL must be an https:// URL"),
        ({"privacy_url": "ftp://example.com"}, "the privacy URL must be an https:// URL"),
        ({"version": "1.0"}, "the app version must look like 1.2.3"),
        ({"developer": "x" * 33}, "the developer name must be 1 to 32 characters"),
    ],
)
def test_bad_settings_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PackageError, match=message):
        manifest(info(**changes))


def test_write_package_refuses_bad_paths_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"must be a \.zip file"):
        write_package(tmp_path / "app.tar", info())
    with pytest.raises(PackageError, match="does not exist"):
        write_package(tmp_path / "missing" / "app.zip", info())
    (tmp_path / "dir.zip").mkdir()
    with pytest.raises(PackageError, match="is a folder"):
        write_package(tmp_path / "dir.zip", info())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.zip"]


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment in an empty folder (no `.env` is read)."""
    monkeypatch.chdir(tmp_path)
    for name in ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_cli_builds_the_package(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("MICROSOFT_APP_ID", APP_ID)
    env.setenv("PUBLIC_BASE_URL", "https://bot.example.org")
    out = tmp_path / "flywheel-teams.zip"
    code = main(
        ["teams-package", str(out), "--developer", "Example Corp", "--app-version", "2.3.4"]
    )
    assert code == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        document = json.loads(archive.read("manifest.json"))
    assert document["id"] == APP_ID
    assert document["version"] == "2.3.4"
    assert document["validDomains"] == ["bot.example.org"]
    assert document["developer"]["name"] == "Example Corp"
    # Nothing else is left behind (the package is written through a temporary file).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flywheel-teams.zip"]


def test_cli_needs_no_password_and_defaults_to_flywheels_version(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("MICROSOFT_APP_ID", APP_ID)
    env.setenv("PUBLIC_BASE_URL", BASE)
    assert main(["teams-package", "app.zip"]) == 0
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        document = json.loads(archive.read("manifest.json"))
    assert document["version"].count(".") == 2


@pytest.mark.parametrize(
    ("variables", "out", "message"),
    [
        ({"PUBLIC_BASE_URL": BASE}, "app.zip", "MICROSOFT_APP_ID is missing"),
        ({"MICROSOFT_APP_ID": APP_ID}, "app.zip", "PUBLIC_BASE_URL must be an https:// URL"),
        (
            {"MICROSOFT_APP_ID": "not-a-guid", "PUBLIC_BASE_URL": BASE},
            "app.zip",
            "MICROSOFT_APP_ID must be a GUID",
        ),
        (
            {"MICROSOFT_APP_ID": APP_ID, "PUBLIC_BASE_URL": BASE},
            "missing/app.zip",
            "does not exist",
        ),
        ({"MICROSOFT_APP_ID": APP_ID, "PUBLIC_BASE_URL": BASE}, "app.json", "must be a .zip"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    out: str,
    message: str,
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    assert main(["teams-package", out]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("flywheel: teams-package: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_mistyped_setting(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("MICROSOFT_APP_ID", APP_ID)
    env.setenv("PUBLIC_BASE_URL", BASE)
    env.setenv("PORT", "eighty")
    assert main(["teams-package", "app.zip"]) == 2
    assert "configuration error: PORT" in capsys.readouterr().err


def test_importing_the_package_builder_stays_light() -> None:
    """Building a package needs no Bot Framework SDK: it is not even imported."""
    code = (
        "import sys, adapters.teams.package; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('botbuilder', 'aiohttp')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_command_in_the_manifest_is_one_the_router_answers() -> None:
    from bot.flows import build_router
    from handlers.core.context import Config
    from storage.db import create_engine, session_factory
    from testing.fakes.clock import FrozenClock

    router = build_router(
        session_factory(create_engine("sqlite+aiosqlite://")), FrozenClock(), Config()
    )
    listed = {title.split()[0] for title, _ in COMMANDS}
    assert listed <= set(router.commands)
    # Every command of the contract's vocabulary is listed; `home` is an addition to it that
    # still works when typed, but Teams has no home tab to advertise it for. Teams shows at
    # most ten commands: `feeds` (also `admin feeds`) and reviewers' `retire` work when typed.
    assert set(router.commands) - listed == {"home", "feeds", "retire"}
