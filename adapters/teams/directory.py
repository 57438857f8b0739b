"""The Directory port for Teams: people of the tenant, through a team the app is installed in."""

from __future__ import annotations

from botbuilder.core import TurnContext
from botbuilder.schema.teams import TeamsChannelAccount
from msrest.exceptions import HttpOperationError
from sqlmodel import select

from adapters.teams import references
from adapters.teams.connector import Connector, status_of
from adapters.teams.profiles import to_actor
from handlers.core.errors import DomainError
from handlers.core.interactions import Actor
from handlers.core.ports import DeliveryError
from storage.db import SessionFactory
from storage.models import Workspace

UNAVAILABLE = "Teams isn't answering right now — please try again in a minute."


class TeamsDirectory:
    """Looks people up in the roster of one of the tenant's teams where the app is installed."""

    def __init__(self, connector: Connector, sessions: SessionFactory) -> None:
        self.connector = connector
        self.sessions = sessions

    async def profile(self, workspace: str, user_id: str) -> Actor | None:
        async with self.sessions() as session:
            query = select(Workspace.id).where(
                Workspace.platform == "teams", Workspace.external_id == workspace
            )
            workspace_id = (await session.exec(query)).first()
            team = (
                await references.installed_team(session, workspace_id)
                if workspace_id is not None
                else None
            )
        if team is None or not team.team_id:
            # No roster to ask: the person is taken at their word, as they were picked.
            return Actor(user_id=user_id, profile_known=False)
        team_id = team.team_id

        async def lookup(turn_context: TurnContext) -> TeamsChannelAccount | None:
            client = turn_context.turn_state.get(self.connector.cloud.BOT_CONNECTOR_CLIENT_KEY)
            try:
                member = await client.conversations.get_conversation_member(team_id, user_id)
            except HttpOperationError as error:
                if status_of(error) in (400, 404):
                    return None
                raise
            return TeamsChannelAccount().deserialize(
                dict(member.serialize(), **(member.additional_properties or {}))
            )

        try:
            member = await self.connector.continue_in(team.reference, team.conversation_id, lookup)
        except DeliveryError:
            raise DomainError(UNAVAILABLE) from None
        if member is None:
            return None
        return to_actor(member, user_id=str(member.aad_object_id or user_id))

    async def by_email(self, workspace: str, email: str) -> Actor | None:
        """Teams' rosters cannot be searched by email without Graph permissions Flywheel
        does not ask for; people imported by email are matched when they first write."""
        return None
