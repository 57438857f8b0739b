"""Outbound Bot Framework tokens: fetched off the event loop, from the login authority the
settings name, and never the reason a turn fails.

A token that cannot be had (Entra ID unreachable, a wrong password) makes the credentials
fail every call at once with `TokenUnavailable`; the caller treats that like any call that
could not reach the Connector: replies of a turn go to the outbox, and the outbox retries.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from botframework.connector.auth import (
    AppCredentials,
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
)
from msal import ConfidentialClientApplication
from msrest.exceptions import ClientRequestError

log = structlog.get_logger(__name__)


class TokenUnavailable(ClientRequestError):
    """No outbound token: the call was never made, exactly as when the Connector is unreachable."""


class UnavailableCredentials(AppCredentials):  # type: ignore[misc]
    """Credentials for a turn whose token could not be had: every call fails at once, rather
    than asking Entra ID again with blocking HTTP on the event loop."""

    def __init__(self, app_id: str, reason: str) -> None:
        super().__init__(app_id=app_id)
        self.reason = reason

    def get_access_token(self, force_refresh: bool = False) -> str:
        raise TokenUnavailable(f"no Bot Framework token: {self.reason}")


class LoginCredentials(MicrosoftAppCredentials):  # type: ignore[misc]
    """App id and password against the login authority (with its tenant) the settings name.

    The SDK's credentials for a private cloud keep `validate_authority` but never hand it to
    MSAL, which then asks login.microsoftonline.com whether the authority exists: a question
    a sovereign cloud's or a test's own authority gets no useful answer to.
    """

    def __init__(
        self,
        app_id: str,
        password: str,
        *,
        login_url: str,
        oauth_scope: str,
        validate_authority: bool,
    ) -> None:
        super().__init__(app_id, password, oauth_scope=oauth_scope)
        self.oauth_endpoint = login_url
        self.validate_authority = validate_authority

    def get_access_token(self, force_refresh: bool = False) -> str:
        if getattr(self, "app", None) is None:
            self.app = ConfidentialClientApplication(
                client_id=self.microsoft_app_id,
                client_credential=self.microsoft_app_password,
                authority=self.oauth_endpoint,
                validate_authority=self.validate_authority,
            )
        return str(super().get_access_token(force_refresh))


class LoginCredentialsFactory(PasswordServiceClientCredentialFactory):  # type: ignore[misc]
    """The SDK's password factory, making `LoginCredentials` for the configured authority."""

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if await self.is_authentication_disabled():
            return MicrosoftAppCredentials.empty()
        if not await self.is_valid_app_id(app_id):
            raise PermissionError("the activity names another bot's app id")
        return LoginCredentials(
            app_id,
            self.password,
            login_url=login_endpoint,
            oauth_scope=oauth_scope,
            validate_authority=validate_authority,
        )


class WarmCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """The SDK's credentials, made once per scope, with their token fetched off the loop.

    msal fetches tokens with blocking HTTP, and the SDK asks for a token synchronously on
    every call; fetching it in a thread first means the call itself finds it cached. When
    the token cannot be had, the turn gets credentials that fail each call at once.
    """

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self.inner = inner
        self._made: dict[tuple[str, str, str], AppCredentials] = {}
        self._failing: str | None = None

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self.inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self.inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        key = (app_id or "", oauth_scope or "", login_endpoint or "")
        credentials = self._made.get(key)
        if credentials is None:
            credentials = await self.inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
            self._made[key] = credentials
        if isinstance(credentials, MicrosoftAppCredentials) and credentials.microsoft_app_id:
            try:
                await asyncio.to_thread(credentials.get_access_token)
            except Exception as error:  # msal and requests fail in many ways; all mean "no token"
                reason = _reason(error)
                if self._failing != reason:
                    # Said once when it starts (or changes), not at every call of every turn.
                    log.warning("teams.token_unavailable", login=login_endpoint, error=reason)
                    self._failing = reason
                return UnavailableCredentials(app_id, reason)
            if self._failing is not None:
                log.info("teams.token_restored", login=login_endpoint)
                self._failing = None
        return credentials


def _reason(error: BaseException) -> str:
    """One line on why no token came: the error's kind and its first line, never a secret
    (msal's messages name the authority and Entra's error code, not the password)."""
    text: Any = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


__all__ = [
    "LoginCredentials",
    "LoginCredentialsFactory",
    "TokenUnavailable",
    "UnavailableCredentials",
    "WarmCredentialsFactory",
]
