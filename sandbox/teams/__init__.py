"""Stand-ins for Microsoft Teams: the Bot Framework connector, the channel-token OpenID metadata, and a team."""

from sandbox.teams.channel import TeamsPerson, TeamsSandbox
from sandbox.teams.connector import TeamsConnectorSandbox
from sandbox.teams.openid import OpenIdSandbox

__all__ = ["OpenIdSandbox", "TeamsConnectorSandbox", "TeamsPerson", "TeamsSandbox"]
