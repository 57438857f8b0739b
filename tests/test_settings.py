"""Start-up refuses half-configured platforms with one clear line; secrets never print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigurationError, load_settings
from testing.processes import clean_env

SECRET = "0123456789abcdef0123"
TEAMS = {"microsoft_app_id": "app-1", "microsoft_app_password": "pw", "flywheel_secret_key": SECRET}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"slack_bot_token": "xoxb-1"}, "SLACK_SIGNING_SECRET is missing"),
        ({"slack_signing_secret": "s"}, "SLACK_BOT_TOKEN is missing"),
        ({"slack_app_token": "xapp-1"}, "SLACK_BOT_TOKEN is missing"),
        ({"slack_client_id": "1.2"}, "SLACK_CLIENT_SECRET is missing"),
        (
            {"slack_client_id": "1.2", "slack_client_secret": "s"},
            "SLACK_CLIENT_ID is set (Sign in with Slack) but SLACK_BOT_TOKEN is missing",
        ),
        ({"microsoft_signin_client_id": "app-2"}, "MICROSOFT_SIGNIN_CLIENT_SECRET is missing"),
        (
            {"microsoft_signin_client_id": "app-2", "microsoft_signin_client_secret": "s"},
            "FLYWHEEL_SECRET_KEY is missing (required to sign people in)",
        ),
        ({"slack_openid_url": "slack.com"}, "SLACK_OPENID_URL must be an http(s) URL"),
        ({"flywheel_session_hours": 0}, "FLYWHEEL_SESSION_HOURS must be between 0 and 720"),
        ({"microsoft_app_id": "abc"}, "MICROSOFT_APP_PASSWORD is missing"),
        (
            {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"},
            "FLYWHEEL_SECRET_KEY is missing",
        ),
        (
            {
                "slack_bot_token": "xoxb-1",
                "slack_signing_secret": "s",
                "flywheel_secret_key": "short",
            },
            "FLYWHEEL_SECRET_KEY is too short",
        ),
        ({"port": "eighty"}, "PORT: Input should be a valid integer"),
        ({"redis_url": "http://127.0.0.1:6379"}, "REDIS_URL must be a redis://"),
        ({"flywheel_outbox_lease_seconds": 5}, "FLYWHEEL_OUTBOX_LEASE_SECONDS must be at least 10"),
        ({"flywheel_metrics_port": 70000}, "FLYWHEEL_METRICS_PORT must be a port number"),
        ({"microsoft_app_password": "pw"}, "MICROSOFT_APP_ID is missing"),
        (
            {"microsoft_app_id": "app-1", "microsoft_app_password": "pw"},
            "FLYWHEEL_SECRET_KEY is missing",
        ),
        (
            {
                "microsoft_app_id": "app-1",
                "microsoft_app_password": "pw",
                "microsoft_app_type": "SingleTenant",
                "flywheel_secret_key": SECRET,
            },
            "MICROSOFT_APP_TENANT_ID is missing",
        ),
        (
            {
                "microsoft_app_id": "app-1",
                "microsoft_app_password": "pw",
                "microsoft_app_type": "UserAssignedMSI",
                "flywheel_secret_key": SECRET,
            },
            "MICROSOFT_APP_TYPE must be MultiTenant or SingleTenant",
        ),
        ({"microsoft_app_tenant_id": "tenant-1"}, "MICROSOFT_APP_ID is missing"),
        (
            {
                "microsoft_app_id": "app-1",
                "microsoft_app_password": "pw",
                "flywheel_secret_key": SECRET,
                "microsoft_openid_metadata_url": "http://127.0.0.1:9/openid",
            },
            "set both",
        ),
        (
            {**TEAMS, "microsoft_login_url": "https://login.example.test/botframework.com"},
            "MICROSOFT_LOGIN_URL and MICROSOFT_OAUTH_SCOPE go together: "
            "MICROSOFT_OAUTH_SCOPE is missing",
        ),
        (
            {**TEAMS, "microsoft_oauth_scope": "https://api.botframework.test"},
            "MICROSOFT_LOGIN_URL and MICROSOFT_OAUTH_SCOPE go together: "
            "MICROSOFT_LOGIN_URL is missing",
        ),
        (
            {
                **TEAMS,
                "microsoft_login_url": "http://login.example.test/botframework.com",
                "microsoft_oauth_scope": "https://api.botframework.test",
            },
            "MICROSOFT_LOGIN_URL must be an https URL ending in the tenant",
        ),
        (
            {
                **TEAMS,
                "microsoft_login_url": "https://login.example.test/",
                "microsoft_oauth_scope": "https://api.botframework.test",
            },
            "MICROSOFT_LOGIN_URL must be an https URL ending in the tenant",
        ),
        (
            {
                **TEAMS,
                "microsoft_login_url": "https://login.example.test/botframework.com",
                "microsoft_oauth_scope": "api.botframework.test",
            },
            "MICROSOFT_OAUTH_SCOPE must be an http(s) URL",
        ),
        (
            {"flywheel_teams_anonymous": "true", "host": "0.0.0.0", "flywheel_secret_key": SECRET},
            "local development only",
        ),
        (
            {
                "flywheel_teams_anonymous": "true",
                "microsoft_app_id": "app-1",
                "microsoft_app_password": "pw",
            },
            "exclude each other",
        ),
        ({"flywheel_teams_anonymous": "true"}, "FLYWHEEL_SECRET_KEY is missing"),
        (
            {"linkedin_client_id": "77abc", "flywheel_secret_key": SECRET},
            "LINKEDIN_CLIENT_ID and LINKEDIN_CLIENT_SECRET go together: "
            "LINKEDIN_CLIENT_SECRET is missing",
        ),
        (
            {"linkedin_client_secret": "s", "flywheel_secret_key": SECRET},
            "LINKEDIN_CLIENT_ID is missing",
        ),
        (
            {"linkedin_client_id": "77abc", "linkedin_client_secret": "s"},
            "FLYWHEEL_SECRET_KEY is missing (required to encrypt LinkedIn tokens)",
        ),
        (
            {
                "linkedin_client_id": "77abc",
                "linkedin_client_secret": "s",
                "flywheel_secret_key": SECRET,
                "linkedin_api_url": "api.linkedin.com",
            },
            "LINKEDIN_API_URL must be an http(s) URL",
        ),
        (
            {"flywheel_secret_key": SECRET, "flywheel_secret_key_previous": "short"},
            "FLYWHEEL_SECRET_KEY_PREVIOUS holds a key shorter than 16 characters",
        ),
        ({"flywheel_secret_key_previous": SECRET}, "FLYWHEEL_SECRET_KEY is missing"),
    ],
)
def test_half_configured_settings_are_refused(values: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None, **values)
    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)


def test_sign_in_with_slack_is_accepted_beside_the_bot_token() -> None:
    settings = load_settings(
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
        slack_client_id="1.2",
        slack_client_secret="client-secret",
        flywheel_secret_key=SECRET,
        _env_file=None,
    )
    assert settings.slack_signin and settings.slack_configured
    assert settings.microsoft_signin is None


def test_sign_in_with_microsoft_uses_the_bots_registration_unless_told_otherwise() -> None:
    bot = load_settings(**TEAMS, _env_file=None)
    assert bot.microsoft_signin is not None and bot.microsoft_signin[0] == "app-1"
    assert bot.microsoft_signin_tenant == "organizations"
    own = load_settings(
        **TEAMS,
        microsoft_app_type="SingleTenant",
        microsoft_app_tenant_id="tenant-1",
        microsoft_signin_client_id="app-2",
        microsoft_signin_client_secret="s",
        _env_file=None,
    )
    assert own.microsoft_signin is not None and own.microsoft_signin[0] == "app-2"
    assert own.microsoft_signin_tenant == "tenant-1"


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        flywheel_secret_key=SECRET,
    )
    assert settings.slack_configured


def test_teams_settings_that_hold() -> None:
    multi = load_settings(
        _env_file=None,
        microsoft_app_id="app-1",
        microsoft_app_password="pw",
        flywheel_secret_key=SECRET,
    )
    single = load_settings(
        _env_file=None,
        microsoft_app_id="app-1",
        microsoft_app_password="pw",
        microsoft_app_type="SingleTenant",
        microsoft_app_tenant_id="tenant-1",
        flywheel_secret_key=SECRET,
    )
    anonymous = load_settings(
        _env_file=None, flywheel_teams_anonymous="true", flywheel_secret_key=SECRET
    )
    sovereign = load_settings(
        _env_file=None,
        **TEAMS,
        microsoft_login_url="https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.com",
        microsoft_oauth_scope="https://api.botframework.us",
    )
    assert sovereign.microsoft_oauth_scope == "https://api.botframework.us"
    assert multi.teams_configured and single.teams_configured and anonymous.teams_configured
    assert not multi.slack_configured
    assert "pw" not in repr(multi).replace("password", "")


def test_no_platform_is_a_valid_console_setup() -> None:
    settings = load_settings(_env_file=None)
    assert not settings.slack_configured
    assert not settings.teams_configured
    assert settings.base_url == "http://127.0.0.1:3978"


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-very-secret",
        slack_signing_secret="signing-very-secret",
        flywheel_secret_key=SECRET,
        database_url="postgresql://flywheel:db-very-secret@db/flywheel",
        openai_api_key="sk-very-secret-key",
    )
    for text in (repr(settings), str(settings)):
        assert "very-secret" not in text
        assert SECRET not in text


def test_slack_api_url_gets_its_trailing_slash() -> None:
    settings = load_settings(_env_file=None, slack_api_url="http://127.0.0.1:9/api")
    assert settings.slack_api_base == "http://127.0.0.1:9/api/"


def test_admins_are_ids_or_lowercased_emails() -> None:
    settings = load_settings(_env_file=None, flywheel_admins="U123, Ada@Acme.test ,")
    assert settings.admins == frozenset({"U123", "ada@acme.test"})


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=4000\nFLYWHEEL_ADMINS=U9\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        settings = load_settings()
    finally:
        os.chdir(cwd)
    assert settings.port == 4000
    assert settings.admins == frozenset({"U9"})


def test_cli_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    env = clean_env(SLACK_BOT_TOKEN="xoxb-secret-token")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "flywheel: configuration error: SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is missing "
        "(or set SLACK_APP_TOKEN for Socket Mode)"
    ]
    assert "xoxb-secret-token" not in result.stderr
