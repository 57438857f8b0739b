"""What Flywheel asks of LinkedIn, as a port: the adapter in `adapters/linkedin` speaks HTTP.

The errors say what matters for a post, which LinkedIn cannot deduplicate: whether the
request may have reached LinkedIn. `NotSent` is safe to try again; `AnswerLost` is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SCOPES = ("openid", "profile", "w_member_social")
# LinkedIn's "little text format": these change meaning in a post's commentary (mentions,
# hashtags, templates) or cut it short, unless escaped with a backslash.
RESERVED = frozenset("\\|{}@[]()<>#*_~")


class AccessToken:
    """A LinkedIn access token: never shown in a repr, a log line or an error."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The token itself, for the Authorization header and for sealing."""
        return self._value

    def __repr__(self) -> str:
        return "AccessToken(***)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Grant:
    """What LinkedIn's token endpoint answered."""

    token: AccessToken
    expires_in: int  # seconds
    scope: str


@dataclass(frozen=True, slots=True)
class Person:
    """The member, from the OpenID userinfo endpoint."""

    sub: str
    name: str


@dataclass(frozen=True, slots=True)
class Article:
    """A post as the member: their words, over a link card to the article."""

    author: str  # urn:li:person:{sub}
    commentary: str  # already in LinkedIn's text format (see `escape`)
    source: str  # the member's tracked link
    title: str
    description: str


class LinkedInError(Exception):
    """LinkedIn did not do what was asked; `detail` is safe to show and to log."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class NotSent(LinkedInError):
    """Nothing was published: LinkedIn was unreachable, busy (429) or failing (5xx)."""

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class AnswerLost(LinkedInError):
    """The request went out and no answer came back: it may have been published."""


class Unauthorized(LinkedInError):
    """The token is expired or revoked (401): the member must connect again."""


class Refused(LinkedInError):
    """LinkedIn refused the request for good (another 4xx), saying why in `detail`."""


class LinkedInApi(Protocol):
    """LinkedIn's OAuth 2.0, OpenID userinfo and versioned Posts API."""

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        """LinkedIn's consent page for the scopes Flywheel needs."""
        ...

    async def exchange_code(self, code: str, *, redirect_uri: str) -> Grant:
        """The access token for an authorization code; LinkedInError when refused."""
        ...

    async def userinfo(self, token: AccessToken) -> Person:
        """Who the token belongs to."""
        ...

    async def create_post(self, token: AccessToken, article: Article) -> str:
        """Publish; the new post's URN (`urn:li:share:…` or `urn:li:ugcPost:…`)."""
        ...

    async def revoke(self, token: AccessToken) -> None:
        """Revoke the token at LinkedIn."""
        ...


def escape(text: str) -> str:
    """`text` in LinkedIn's text format, shown exactly as typed."""
    return "".join("\\" + c if c in RESERVED else c for c in text)


def author_urn(sub: str) -> str:
    return f"urn:li:person:{sub}"


def post_url(urn: str) -> str:
    """Where the member (and anyone) sees the live post."""
    return f"https://www.linkedin.com/feed/update/{urn}/"
