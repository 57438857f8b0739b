"""Which Slack installation a request belongs to: the seam between one workspace and many.

A single-workspace app knows its one installation from its bot token (`auth.test`, asked
at start-up): a signed request naming any other team or organisation is refused before
anything runs. A multi-workspace app implements `Installations` over its stored OAuth
installs instead; the middleware that refuses strangers, the authorisation that hands Bolt
the token and the reach of FLYWHEEL_ADMINS all ask the protocol and stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient


@dataclass(frozen=True, slots=True)
class Installation:
    """One install of the app: a workspace, or a whole Enterprise Grid organisation."""

    bot_token: str
    team_id: str | None
    enterprise_id: str | None
    is_enterprise_install: bool = False
    bot_user_id: str | None = None
    bot_id: str | None = None
    team_name: str = ""

    def covers(self, *, team_id: str | None, enterprise_id: str | None) -> bool:
        """Whether a request naming this team (and organisation) is meant for this install.

        Flywheel's workspace is a Slack team, so a request naming none is never covered,
        not even by an org-wide install: there would be nowhere to keep what it did.
        """
        if not team_id:
            return False
        if self.is_enterprise_install:
            # Slack signs the organisation into every request of its workspaces.
            return self.enterprise_id is not None and enterprise_id == self.enterprise_id
        if team_id != self.team_id:
            return False
        return not (enterprise_id and self.enterprise_id) or enterprise_id == self.enterprise_id

    def covers_workspace(self, team_id: str) -> bool:
        """Whether a stored Slack workspace belongs to this install.

        An org-wide install admits any team of its organisation, and a stored workspace
        does not record its organisation: every one it admitted is taken to be its own.
        """
        return self.is_enterprise_install or team_id == self.team_id

    def authorize_result(self) -> AuthorizeResult:
        """What Bolt needs to act for this install (its token and bot identity)."""
        return AuthorizeResult(
            enterprise_id=self.enterprise_id,
            team_id=self.team_id,
            bot_token=self.bot_token,
            bot_user_id=self.bot_user_id,
            bot_id=self.bot_id,
        )


class Installations(Protocol):
    """Where installations are looked up: the one token's, or stored OAuth installs."""

    async def find(self, *, team_id: str | None, enterprise_id: str | None) -> Installation | None:
        """The installation a request naming this team and organisation is for, else None."""
        ...

    def covers_workspace(self, team_id: str) -> bool:
        """Whether a stored Slack workspace is one of the installations served here."""
        ...


class SingleWorkspace:
    """The installation of SLACK_BOT_TOKEN, identified once with `auth.test`."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._identity: Installation | None = None

    @property
    def identity(self) -> Installation | None:
        """The installation, once identified; None before."""
        return self._identity

    async def identify(self) -> Installation:
        """Ask Slack whose token this is (once; later calls reuse the answer)."""
        if self._identity is None:
            # Two first requests may both ask; the answers are the same, so no lock.
            answer = await self._client.auth_test()
            token = self._client.token
            assert token is not None, "the identity client carries the bot token"
            self._identity = Installation(
                bot_token=token,
                team_id=_text(answer.get("team_id")),
                enterprise_id=_text(answer.get("enterprise_id")),
                is_enterprise_install=answer.get("is_enterprise_install") is True,
                bot_user_id=_text(answer.get("user_id")),
                bot_id=_text(answer.get("bot_id")),
                team_name=_text(answer.get("team")) or "",
            )
        return self._identity

    async def find(self, *, team_id: str | None, enterprise_id: str | None) -> Installation | None:
        identity = await self.identify()
        return identity if identity.covers(team_id=team_id, enterprise_id=enterprise_id) else None

    def covers_workspace(self, team_id: str) -> bool:
        # Not yet identified (Slack unreachable at start-up): nobody is covered until it is.
        return self._identity is not None and self._identity.covers_workspace(team_id)


class InstallationAuthorize(AsyncAuthorize):
    """Bolt's `authorize`: the token of the installation a request is for."""

    def __init__(self, installations: Installations) -> None:
        self._installations = installations

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        found = await self._installations.find(team_id=team_id, enterprise_id=enterprise_id)
        return None if found is None else found.authorize_result()


def _text(value: object) -> str | None:
    return str(value) if value else None


__all__ = ["Installation", "InstallationAuthorize", "Installations", "SingleWorkspace"]
