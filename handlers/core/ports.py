"""The ports the business depends on, as Protocols; adapters and `bot/` provide them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from handlers.core.interactions import Actor
    from handlers.drafting.prompts import Prompt
    from handlers.linkedin.api import LinkedInApi


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row on its way to a platform."""

    workspace: str  # the platform's workspace id (Slack team, Teams tenant)
    kind: str  # message | update | home, or a kind of one adapter's own
    target: dict[str, Any]
    payload: dict[str, Any]
    # For an update: where the original landed.
    channel: str | None = None
    message_id: str | None = None
    # Which try this is (from 1), and whether the outbox gives up if it fails: a sender with
    # a second way to reach the person (Slack's DM for a failing response URL) uses it then.
    attempt: int = 1
    last_attempt: bool = False


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a message landed, so it can be updated later."""

    channel: str | None = None
    message_id: str | None = None


class DeliveryError(Exception):
    """A send failed; subclasses say whether and when to try again."""


class RateLimited(DeliveryError):
    """Too many sends: wait `retry_after` seconds.

    `workspace_wide` says whether the whole workspace must wait (a platform-wide limit) or
    only this message (one busy conversation), so the others go on meanwhile.
    """

    workspace_wide = True

    def __init__(self, retry_after: float, detail: str = "rate limited") -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """5xx, timeouts, connection errors: retry with backoff."""


class PermanentError(DeliveryError):
    """The platform refused the message for good (unknown channel, bad payload)."""


class Sender(Protocol):
    """Sends outbox deliveries for one platform."""

    platform: str

    async def send(self, delivery: Delivery) -> Delivered: ...


class Directory(Protocol):
    """People as their platform knows them, including those who never spoke to the bot."""

    async def profile(self, workspace: str, user_id: str) -> Actor | None:
        """The person with this platform id, or None if the platform knows no such user."""
        ...

    async def by_email(self, workspace: str, email: str) -> Actor | None:
        """The person with this email address, or None."""
        ...


class EmbeddingError(Exception):
    """Embeddings could not be computed (service down, rate limited, timed out, bad answer)."""


class Embedder(Protocol):
    """Turns texts into vectors; one model, so vectors of one embedder are comparable."""

    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises EmbeddingError when it cannot."""
        ...


# Why a language model gave no usable answer; each reason gets its own advice for the user.
LLMFailure = Literal["rate_limited", "unavailable", "timeout", "rejected", "refused", "malformed"]


class LLMError(Exception):
    """The model gave no usable answer; `reason` says why, `detail` is safe to log."""

    def __init__(self, reason: LLMFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: LLMFailure = reason
        self.detail = detail


class LLM(Protocol):
    """A language model that answers a rendered prompt with JSON matching its schema."""

    async def complete_json(self, prompt: Prompt) -> dict[str, Any]:
        """The model's answer as a JSON object; raises LLMError when there is none.

        An answer that is not a JSON object is LLMError("malformed"); whether it matches
        the prompt's schema is for the caller to check.
        """
        ...


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """Weekly figures to draw: the weeks' labels, then one named row of values per series."""

    title: str
    weeks: tuple[str, ...]
    series: tuple[tuple[str, tuple[int, ...]], ...]


class ChartRenderer(Protocol):
    """Draws weekly figures as a PNG image (CPU-bound: callers run it off the event loop)."""

    def render_png(self, chart: ChartSeries) -> bytes: ...


# What a fetch is for: a page someone shared (HTML only) or a feed (feed types too).
FetchKind = Literal["page", "feed"]
# Why a fetch gave nothing; each reason has its own sentence for the person who asked.
FetchFailure = Literal[
    "invalid",
    "scheme",
    "refused_address",
    "unreachable",
    "status",
    "content_type",
    "too_large",
    "timeout",
    "redirects",
]


class FetchError(Exception):
    """A URL could not be fetched; `message` is one clear line for the person who asked."""

    def __init__(self, reason: FetchFailure, message: str) -> None:
        super().__init__(message)
        self.reason: FetchFailure = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch read: the final URL after redirects, and at most the size cap of body."""

    url: str
    status: int
    content_type: str = ""
    body: bytes = b""
    # The charset the server declared, if any: parsers fall back on the document's own.
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher(Protocol):
    """Fetches a URL from the internet, never from an internal address."""

    async def fetch(
        self,
        url: str,
        *,
        kind: FetchKind = "page",
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """The response (a 304 when the validators still hold); raises FetchError."""
        ...

    def names_internal_host(self, url: str) -> bool:
        """Whether a link names a refused host outright (an internal IP, localhost),
        without resolving it: links from feeds are checked so without being fetched."""
        ...


@dataclass(frozen=True, slots=True)
class AI:
    """The outside services scheduled work may use (the AI models, LinkedIn); each is None
    when it is not configured."""

    embedder: Embedder | None = None
    llm: LLM | None = None
    linkedin: LinkedInApi | None = None


NO_AI = AI()
