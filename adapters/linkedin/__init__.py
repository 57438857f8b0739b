"""LinkedIn's OAuth 2.0, OpenID userinfo and Posts API over HTTP (the `LinkedInApi` port)."""

from adapters.linkedin.client import LinkedInClient

__all__ = ["LinkedInClient"]
