"""The one settings object, from the environment and `.env`, validated at start-up."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from adapters.fetch import IPNetwork, parse_networks

# Bot registrations Flywheel can run as (managed identities need a host that has one).
TEAMS_APP_TYPES = ("multitenant", "singletenant")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class ConfigurationError(Exception):
    """Start-up refused: the message is one line naming what is missing or wrong."""


class Settings(BaseSettings):
    """Every variable of CONTRACT.md; secrets are `SecretStr`, so they never print."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./flywheel.db"
    host: str = "127.0.0.1"
    port: int = 3978
    public_base_url: str | None = None
    flywheel_secret_key: SecretStr | None = None
    # Earlier values of FLYWHEEL_SECRET_KEY, comma-separated: what they sealed stays readable
    # (and is sealed again under the current key when used), so the key can be rotated.
    flywheel_secret_key_previous: SecretStr | None = None
    flywheel_admins: str = ""
    log_level: str = "INFO"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Sign in with Slack (OpenID Connect) for the program page: the provider's base, which is
    # also the ID tokens' issuer. Tests point it at a fake provider.
    slack_openid_url: str = "https://slack.com"

    microsoft_app_id: str | None = None
    microsoft_app_password: SecretStr | None = None
    microsoft_app_type: str = "MultiTenant"
    microsoft_app_tenant_id: str | None = None
    microsoft_openid_metadata_url: str | None = None
    microsoft_token_issuer: str | None = None
    # Where outbound tokens come from: the login authority (with its tenant) and the scope
    # asked for. Sovereign clouds have their own; tests point them at a fake Entra ID.
    microsoft_login_url: str | None = None
    microsoft_oauth_scope: str | None = None
    # Sign in with Microsoft (Entra ID) for the program page: the login authority, and the app
    # registration asked (the Teams bot's by default). The tenant is MICROSOFT_APP_TENANT_ID,
    # or any organisation's for a multi-tenant bot.
    microsoft_signin_url: str = "https://login.microsoftonline.com"
    microsoft_signin_client_id: str | None = None
    microsoft_signin_client_secret: SecretStr | None = None
    # Teams without credentials, for a local emulator only: nothing inbound is authenticated.
    flywheel_teams_anonymous: bool = False

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_embedding_model: str = "text-embedding-3-small"

    # Outbox delivery: messages per second per workspace, and attempts before giving up.
    flywheel_outbox_rate: float = 20.0
    flywheel_outbox_max_attempts: int = 8
    flywheel_outbox_concurrency: int = 8
    # How long a claimed row is a dispatcher's before another may send it (a dispatcher that
    # died mid-send leaves its rows to others after this).
    flywheel_outbox_lease_seconds: float = 60.0

    # Posting to LinkedIn as the member (optional): the company's own LinkedIn app, and the
    # bases of LinkedIn's OAuth and REST APIs (tests point them at a fake).
    linkedin_client_id: str | None = None
    linkedin_client_secret: SecretStr | None = None
    linkedin_oauth_url: str = "https://www.linkedin.com/oauth/v2"
    linkedin_api_url: str = "https://api.linkedin.com"

    # Shared send limits in Redis rather than PostgreSQL (or this process's memory on SQLite).
    redis_url: SecretStr | None = None
    # `flywheel worker` serves /healthz, /readyz and /metrics on this port (none by default).
    flywheel_metrics_port: int | None = None

    # Tracked links: proxies whose X-Forwarded-For is believed (comma-separated addresses or
    # networks, `*` for any peer), and how often buffered clicks are written.
    flywheel_trusted_proxies: str = ""
    flywheel_click_flush_seconds: float = 1.0
    # How long a sign-in to the program page lasts.
    flywheel_session_hours: float = 8.0

    # Private networks that fetching a shared link or a feed may reach (an intranet, tests);
    # comma-separated. Everything not on the public internet is refused otherwise.
    flywheel_fetch_allow_networks: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        problem = self.problem()
        if problem:
            raise ValueError(problem)
        return self

    def problem(self) -> str | None:
        """The first configuration problem, as one line; None when the settings hold."""
        pairs = (
            (
                "SLACK_CLIENT_ID",
                self.slack_client_id,
                "SLACK_CLIENT_SECRET",
                self.slack_client_secret,
            ),
            (
                "SLACK_CLIENT_SECRET",
                self.slack_client_secret,
                "SLACK_CLIENT_ID",
                self.slack_client_id,
            ),
            (
                "MICROSOFT_APP_ID",
                self.microsoft_app_id,
                "MICROSOFT_APP_PASSWORD",
                self.microsoft_app_password,
            ),
            (
                "MICROSOFT_APP_PASSWORD",
                self.microsoft_app_password,
                "MICROSOFT_APP_ID",
                self.microsoft_app_id,
            ),
            ("SLACK_APP_TOKEN", self.slack_app_token, "SLACK_BOT_TOKEN", self.slack_bot_token),
            (
                "MICROSOFT_SIGNIN_CLIENT_ID",
                self.microsoft_signin_client_id,
                "MICROSOFT_SIGNIN_CLIENT_SECRET",
                self.microsoft_signin_client_secret,
            ),
            (
                "MICROSOFT_SIGNIN_CLIENT_SECRET",
                self.microsoft_signin_client_secret,
                "MICROSOFT_SIGNIN_CLIENT_ID",
                self.microsoft_signin_client_id,
            ),
        )
        for have, value, need, other in pairs:
            if value and not other:
                return f"{have} is set but {need} is missing"
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            return (
                "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is missing "
                "(or set SLACK_APP_TOKEN for Socket Mode)"
            )
        if self.slack_signing_secret and not (self.slack_bot_token or self.slack_client_id):
            return "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is missing"
        if self.slack_client_id and not self.slack_bot_token:
            return (
                "SLACK_CLIENT_ID is set (Sign in with Slack) but SLACK_BOT_TOKEN is missing: "
                "multi-workspace OAuth install is not available yet"
            )
        teams = self._teams_problem()
        if teams:
            return teams
        if (self.slack_configured or self.teams_configured) and not self.flywheel_secret_key:
            return "FLYWHEEL_SECRET_KEY is missing (required when a chat platform is configured)"
        if self.flywheel_secret_key and len(self.flywheel_secret_key.get_secret_value()) < 16:
            return "FLYWHEEL_SECRET_KEY is too short (use at least 16 random characters)"
        if not self.slack_api_url.startswith(("http://", "https://")):
            return "SLACK_API_URL must be an http(s) URL"
        for old in self.previous_secret_keys:
            if len(old) < 16:
                return "FLYWHEEL_SECRET_KEY_PREVIOUS holds a key shorter than 16 characters"
        if self.previous_secret_keys and not self.flywheel_secret_key:
            return "FLYWHEEL_SECRET_KEY_PREVIOUS is set but FLYWHEEL_SECRET_KEY is missing"
        linkedin = self._linkedin_problem()
        if linkedin:
            return linkedin
        if self.flywheel_outbox_rate <= 0 or self.flywheel_outbox_max_attempts < 1:
            return (
                "FLYWHEEL_OUTBOX_RATE must be positive and FLYWHEEL_OUTBOX_MAX_ATTEMPTS at least 1"
            )
        if self.flywheel_outbox_lease_seconds < 10:
            return "FLYWHEEL_OUTBOX_LEASE_SECONDS must be at least 10"
        if self.redis_url is not None and not self.redis_url.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            return "REDIS_URL must be a redis://, rediss:// or unix:// URL"
        if self.flywheel_metrics_port is not None and not 0 < self.flywheel_metrics_port < 65536:
            return "FLYWHEEL_METRICS_PORT must be a port number (1-65535)"
        if self.flywheel_click_flush_seconds <= 0:
            return "FLYWHEEL_CLICK_FLUSH_SECONDS must be positive"
        if not 0 < self.flywheel_session_hours <= 24 * 30:
            return "FLYWHEEL_SESSION_HOURS must be between 0 and 720"
        for name, url in (
            ("SLACK_OPENID_URL", self.slack_openid_url),
            ("MICROSOFT_SIGNIN_URL", self.microsoft_signin_url),
        ):
            if not url.startswith(("http://", "https://")):
                return f"{name} must be an http(s) URL"
        if self.microsoft_signin_client_id and not self.flywheel_secret_key:
            return "FLYWHEEL_SECRET_KEY is missing (required to sign people in)"
        for proxy in self.trusted_proxies:
            try:
                if proxy != "*":
                    ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                return f"FLYWHEEL_TRUSTED_PROXIES: {proxy!r} is not an IP address or network"
        try:
            parse_networks(self.flywheel_fetch_allow_networks)
        except ValueError as error:
            return f"FLYWHEEL_FETCH_ALLOW_NETWORKS: {error}"
        return None

    def _linkedin_problem(self) -> str | None:
        """LinkedIn's pair (both or neither), its bases, and the key that seals its tokens."""
        if bool(self.linkedin_client_id) != bool(self.linkedin_client_secret):
            missing = "LINKEDIN_CLIENT_SECRET" if self.linkedin_client_id else "LINKEDIN_CLIENT_ID"
            return (
                f"LINKEDIN_CLIENT_ID and LINKEDIN_CLIENT_SECRET go together: {missing} is missing"
            )
        for name, url in (
            ("LINKEDIN_OAUTH_URL", self.linkedin_oauth_url),
            ("LINKEDIN_API_URL", self.linkedin_api_url),
        ):
            if not url.startswith(("http://", "https://")):
                return f"{name} must be an http(s) URL"
        if self.linkedin_configured and not self.flywheel_secret_key:
            return "FLYWHEEL_SECRET_KEY is missing (required to encrypt LinkedIn tokens)"
        return None

    def _teams_problem(self) -> str | None:
        """What keeps the Teams settings from holding together, as one line."""
        app_type = self.microsoft_app_type.strip().lower()
        if app_type not in TEAMS_APP_TYPES:
            return "MICROSOFT_APP_TYPE must be MultiTenant or SingleTenant"
        if self.microsoft_app_tenant_id and not self.microsoft_app_id:
            return "MICROSOFT_APP_TENANT_ID is set but MICROSOFT_APP_ID is missing"
        if self.flywheel_teams_anonymous:
            if self.microsoft_app_id:
                return "FLYWHEEL_TEAMS_ANONYMOUS and MICROSOFT_APP_ID exclude each other: unset one"
            if self.host not in LOOPBACK_HOSTS:
                return (
                    "FLYWHEEL_TEAMS_ANONYMOUS accepts unauthenticated Teams traffic and is for "
                    "local development only: HOST must be 127.0.0.1, ::1 or localhost"
                )
        if not self.microsoft_app_id:
            return None
        if app_type == "singletenant" and not self.microsoft_app_tenant_id:
            return "MICROSOFT_APP_TYPE is SingleTenant but MICROSOFT_APP_TENANT_ID is missing"
        for name, url in (
            ("MICROSOFT_OPENID_METADATA_URL", self.microsoft_openid_metadata_url),
            ("MICROSOFT_TOKEN_ISSUER", self.microsoft_token_issuer),
        ):
            if url is not None and not url.startswith(("http://", "https://")):
                return f"{name} must be an http(s) URL"
        if bool(self.microsoft_openid_metadata_url) != bool(self.microsoft_token_issuer):
            return "MICROSOFT_OPENID_METADATA_URL and MICROSOFT_TOKEN_ISSUER go together: set both"
        return self._teams_login_problem()

    def _teams_login_problem(self) -> str | None:
        """The outbound pair: both or neither, the login URL an https authority with a tenant."""
        login, scope = self.microsoft_login_url, self.microsoft_oauth_scope
        if bool(login) != bool(scope):
            missing = "MICROSOFT_OAUTH_SCOPE" if login else "MICROSOFT_LOGIN_URL"
            return (
                f"MICROSOFT_LOGIN_URL and MICROSOFT_OAUTH_SCOPE go together: {missing} is missing"
            )
        if scope is not None and not scope.startswith(("http://", "https://")):
            return "MICROSOFT_OAUTH_SCOPE must be an http(s) URL"
        if login is not None:
            # MSAL accepts nothing else: an https authority whose path names the tenant.
            parsed = urlsplit(login)
            if parsed.scheme != "https" or not parsed.hostname or not parsed.path.strip("/"):
                return (
                    "MICROSOFT_LOGIN_URL must be an https URL ending in the tenant, like "
                    "https://login.microsoftonline.com/botframework.com"
                )
        return None

    def __repr_args__(self) -> Any:
        # A database URL may carry a password: show it masked, like the SecretStr fields.
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = make_url(value).render_as_string(hide_password=True)
            yield name, value

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def chat_configured(self) -> bool:
        """Slack or Teams: `flywheel run` serves them; with neither, it opens the console."""
        return self.slack_configured or self.teams_configured

    @property
    def teams_configured(self) -> bool:
        return self.microsoft_app_id is not None or self.flywheel_teams_anonymous

    @property
    def linkedin_configured(self) -> bool:
        return bool(self.linkedin_client_id and self.linkedin_client_secret)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The current secret key first, then the previous ones (empty without a key)."""
        if self.flywheel_secret_key is None:
            return ()
        return (self.flywheel_secret_key.get_secret_value(), *self.previous_secret_keys)

    @property
    def previous_secret_keys(self) -> tuple[str, ...]:
        raw = self.flywheel_secret_key_previous
        if raw is None:
            return ()
        return tuple(k.strip() for k in raw.get_secret_value().split(",") if k.strip())

    @property
    def slack_signin(self) -> bool:
        """Sign in with Slack: the app's OAuth client is set (beside its bot token)."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def microsoft_signin(self) -> tuple[str, SecretStr] | None:
        """Sign in with Microsoft's client id and secret: their own, else the Teams bot's."""
        if self.microsoft_signin_client_id and self.microsoft_signin_client_secret:
            return self.microsoft_signin_client_id, self.microsoft_signin_client_secret
        if self.microsoft_app_id and self.microsoft_app_password:
            return self.microsoft_app_id, self.microsoft_app_password
        return None

    @property
    def microsoft_signin_tenant(self) -> str:
        """The Entra tenant people sign in from: the bot's own, or any organisation's."""
        return self.microsoft_app_tenant_id or "organizations"

    @property
    def slack_api_base(self) -> str:
        """`slack_sdk` joins method names onto the base, which must end with a slash."""
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def trusted_proxies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.flywheel_trusted_proxies.split(",") if p.strip())

    @property
    def fetch_allow_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.flywheel_fetch_allow_networks)

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(
            a.strip().lower() if "@" in a else a.strip()
            for a in self.flywheel_admins.split(",")
            if a.strip()
        )


def load_settings(**overrides: object) -> Settings:
    """Read settings, or raise ConfigurationError with one line saying what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"{where}: {message}" if where else message) from None
