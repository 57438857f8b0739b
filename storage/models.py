"""Tables. Every tenant-owned row carries its workspace id, and every query filters by it."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, json_type

# Naming convention keeps constraint names stable across SQLite and PostgreSQL, which
# the migrations rely on.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Public codes (tracked links, public post pages) are 16 URL-safe characters: 96 random bits.
CODE_LENGTH = 16


def random_code() -> str:
    """A fresh, unguessable, URL-safe code of CODE_LENGTH characters."""
    return secrets.token_urlsafe(CODE_LENGTH * 3 // 4)


class Workspace(SQLModel, table=True):
    """A Slack team, a Teams tenant or the console's demo workspace."""

    __tablename__ = "workspace"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    created_at: datetime = Field(sa_type=UTCDateTime)


class Member(SQLModel, table=True):
    """A person of one workspace; the same human on Slack and Teams is two members."""

    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    user_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    tz: str | None = Field(default=None, max_length=64)
    is_platform_admin: bool = False
    is_bot: bool = False
    # The job title the platform knows, so suggested captions can speak in the person's role.
    title: str | None = Field(default=None, max_length=200)
    # Share suggestions: True opted in (posts matching interests or team), False opted out
    # (never, not even for their own requests), None not asked yet.
    share_opt_in: bool | None = None
    interests: list[str] = Field(default_factory=list, sa_type=json_type())
    team: str | None = Field(default=None, max_length=100)
    # Weekly personal notes; None follows the workspace's default.
    personal_notes: bool | None = None
    # When Flywheel first said hello (an install, a first open): nobody is welcomed twice.
    welcomed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ExpertProfile(SQLModel, table=True):
    """What an expert knows and how much they can take on."""

    __tablename__ = "expert_profile"
    __table_args__ = (UniqueConstraint("member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    topics: list[str] = Field(default_factory=list, sa_type=json_type())
    bio: str = Field(default="", max_length=2000)
    capacity: int = 2
    snoozed_until: date | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ContentRequest(SQLModel, table=True):
    """Someone asked for content; the loop starts here."""

    __tablename__ = "content_request"
    __table_args__ = (Index(None, "workspace_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    requester_id: int = Field(foreign_key="member.id", index=True)
    topic: str = Field(max_length=200)
    context: str = Field(default="", max_length=3000)
    audience: str = Field(default="", max_length=200)
    needed_by: date | None = None
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    status: str = Field(default="open", max_length=24)
    source_text: str | None = Field(default=None, max_length=4000)
    source_permalink: str | None = Field(default=None, max_length=1000)
    assignee_id: int | None = Field(default=None, foreign_key="member.id")
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Ping(SQLModel, table=True):
    """An expert asked to take a request: one per expert and request, whatever the round."""

    __tablename__ = "ping"
    __table_args__ = (
        UniqueConstraint("request_id", "member_id"),
        Index(None, "workspace_id", "status", "expires_at"),
        Index(None, "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    request_id: int = Field(foreign_key="content_request.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    round: int = 1
    # pending → claimed | declined | passed (suggested someone) | expired | withdrawn
    status: str = Field(default="pending", max_length=16)
    reasons: list[str] = Field(default_factory=list, sa_type=json_type())
    suggested_by_id: int | None = Field(default=None, foreign_key="member.id")
    note: str | None = Field(default=None, max_length=500)
    deliver_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Vote(SQLModel, table=True):
    """A +1: one per person and request."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("request_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    request_id: int = Field(foreign_key="content_request.id")
    member_id: int = Field(foreign_key="member.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class Draft(SQLModel, table=True):
    """The assigned expert's working copy for a request; submitted copies are DraftVersions."""

    __tablename__ = "draft"
    __table_args__ = (UniqueConstraint("request_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    request_id: int = Field(foreign_key="content_request.id")
    author_id: int = Field(foreign_key="member.id")
    title: str = Field(default="", max_length=150)
    body: str = Field(default="", max_length=3000)
    canonical_url: str | None = Field(default=None, max_length=2000)
    captions: list[str] = Field(default_factory=list, sa_type=json_type())
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    ai_assisted: bool = False
    ai_label: str | None = Field(default=None, max_length=200)
    # editing → in_review ⇄ changes_requested → approved | rejected
    status: str = Field(default="editing", max_length=24)
    version: int = 0  # the latest submitted version; 0 before the first submission
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DraftVersion(SQLModel, table=True):
    """A submitted version, frozen: what reviewers saw and decided on."""

    __tablename__ = "draft_version"
    __table_args__ = (UniqueConstraint("draft_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    draft_id: int = Field(foreign_key="draft.id")
    version: int
    title: str = Field(max_length=150)
    body: str = Field(max_length=3000)
    canonical_url: str | None = Field(default=None, max_length=2000)
    captions: list[str] = Field(default_factory=list, sa_type=json_type())
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    ai_assisted: bool = False
    submitted_by_id: int = Field(foreign_key="member.id")
    submitted_at: datetime = Field(sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Who did what to which version, and what they said: submissions and decisions."""

    __tablename__ = "audit_event"
    __table_args__ = (Index(None, "workspace_id", "request_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    request_id: int = Field(foreign_key="content_request.id")
    draft_id: int | None = Field(default=None, foreign_key="draft.id")
    version: int | None = None
    actor_id: int = Field(foreign_key="member.id")
    action: str = Field(max_length=32)
    comment: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime)


class AiTask(SQLModel, table=True):
    """A request for AI help, done by the worker, never on the acknowledgement path."""

    __tablename__ = "ai_task"
    __table_args__ = (Index(None, "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    draft_id: int = Field(foreign_key="draft.id", index=True)
    requested_by_id: int = Field(foreign_key="member.id")
    notes: str = Field(default="", max_length=2000)
    status: str = Field(default="pending", max_length=16)  # pending | running | done | failed
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Post(SQLModel, table=True):
    """Approved content, ready to share: a link elsewhere, or the text itself."""

    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slug"),
        UniqueConstraint("draft_id"),
        UniqueConstraint("public_code"),
        Index(None, "workspace_id", "canonical_url"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="content_request.id")
    # Drafted posts have their draft; links and feed items have none.
    draft_id: int | None = Field(default=None, foreign_key="draft.id")
    version: int = 1
    # Where it came from: request (the loop's own drafts) | link (`share <url>`) | feed.
    source: str = Field(default="request", max_length=16)
    feed_id: int | None = Field(default=None, foreign_key="feed.id")
    # Who it is suggested to beyond the people behind it: "interests" (opted-in people whose
    # interests or team match its tags) or "everyone" (everyone who opted in).
    audience: str = Field(default="interests", max_length=16)
    image_url: str | None = Field(default=None, max_length=2000)
    # Retired (now, or from `ends_at` on): no longer suggested, found or shared; its
    # tracked links keep redirecting.
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    slug: str = Field(max_length=120)
    title: str = Field(max_length=150)
    summary: str = Field(default="", max_length=400)
    body: str = Field(default="", max_length=3000)
    canonical_url: str | None = Field(default=None, max_length=2000)
    captions: list[str] = Field(default_factory=list, sa_type=json_type())
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    author_id: int = Field(foreign_key="member.id")
    approved_by_id: int = Field(foreign_key="member.id")
    ai_assisted: bool = False
    published_at: datetime = Field(sa_type=UTCDateTime)
    # The address of its public page (`/p/{public_code}`): random, so no workspace's posts
    # can be listed by counting.
    public_code: str = Field(default_factory=random_code, max_length=32)


class Feed(SQLModel, table=True):
    """An RSS, Atom or JSON feed an admin added: its new items become posts."""

    __tablename__ = "feed"
    __table_args__ = (
        UniqueConstraint("workspace_id", "url"),
        Index(None, "status", "next_poll_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    url: str = Field(max_length=2000)
    title: str = Field(default="", max_length=200)
    # True: each item goes to the reviewers first; False: published at once.
    review_first: bool = True
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    audience: str = Field(default="interests", max_length=16)  # interests | everyone
    status: str = Field(default="active", max_length=16)  # checking | active | paused | removed
    paused_reason: str | None = Field(default=None, max_length=300)
    added_by_id: int = Field(foreign_key="member.id")
    # Conditional GET validators from the last answer.
    etag: str | None = Field(default=None, max_length=300)
    last_modified: str | None = Field(default=None, max_length=100)
    failures: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_poll_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class FeedItem(SQLModel, table=True):
    """An item seen in a feed, once per GUID: what keeps an item from becoming two posts."""

    __tablename__ = "feed_item"
    __table_args__ = (UniqueConstraint("feed_id", "guid"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    feed_id: int = Field(foreign_key="feed.id")
    guid: str = Field(max_length=500)
    canonical_url: str | None = Field(default=None, max_length=2000)
    # posted | review | old (before the feed was added; its newest may be offered as a test)
    # | skipped (unusable) | duplicate
    outcome: str = Field(max_length=16)
    link_id: int | None = Field(default=None, foreign_key="content_link.id")
    post_id: int | None = Field(default=None, foreign_key="post.id")
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ContentLink(SQLModel, table=True):
    """Existing content proposed for sharing (a link someone shared, a feed item), from its
    fetch to the reviewers' decision."""

    __tablename__ = "content_link"
    __table_args__ = (
        Index(None, "workspace_id", "canonical_url"),
        Index(None, "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    member_id: int = Field(foreign_key="member.id")  # who shared it (a feed: who added it)
    source: str = Field(default="link", max_length=16)  # link | feed
    feed_id: int | None = Field(default=None, foreign_key="feed.id")
    url: str = Field(max_length=2000)  # as typed
    # fetching → preview (the person adds details) → in_review → approved | rejected;
    # a new feed's newest item: offered (to the admin who added it) → in_review | approved
    status: str = Field(default="fetching", max_length=16)
    canonical_url: str | None = Field(default=None, max_length=2000)
    title: str = Field(default="", max_length=150)
    description: str = Field(default="", max_length=400)
    image_url: str | None = Field(default=None, max_length=2000)
    site_name: str = Field(default="", max_length=100)
    captions: list[str] = Field(default_factory=list, sa_type=json_type())
    tags: list[str] = Field(default_factory=list, sa_type=json_type())
    why: str = Field(default="", max_length=500)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    post_id: int | None = Field(default=None, foreign_key="post.id")
    decided_by_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TrackedLink(SQLModel, table=True):
    """One person's link to one post on one network: `/r/{code}`, the same every time."""

    __tablename__ = "tracked_link"
    __table_args__ = (
        UniqueConstraint("code"),
        UniqueConstraint("intent_code"),
        UniqueConstraint("post_id", "member_id", "network"),
        Index(None, "workspace_id", "member_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    post_id: int = Field(foreign_key="post.id")
    member_id: int = Field(foreign_key="member.id")  # the sharer
    network: str = Field(max_length=16)  # linkedin | x | email | page
    code: str = Field(default_factory=random_code, max_length=32)
    # The share button's code: `/s/{intent_code}` records the share, then opens the composer.
    # Apart from `code`, which is public once shared, so nobody can fake someone's shares.
    intent_code: str = Field(default_factory=random_code, max_length=32)
    # The workspace's local day of the link's first counted click (kept by the click writer
    # with the tally): a share of a clicked link is a share confirmed.
    first_click_day: date | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)


class Click(SQLModel, table=True):
    """A visit to a tracked link. Previews and repeats are kept but not counted as clicks."""

    __tablename__ = "click"
    __table_args__ = (
        Index(None, "workspace_id", "at"),
        Index(None, "post_id", "at"),
        Index(None, "member_id", "at"),
        Index(None, "visitor", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    link_id: int = Field(foreign_key="tracked_link.id")
    # Copied from the link so the digests group clicks without a join.
    post_id: int = Field(foreign_key="post.id")
    member_id: int = Field(foreign_key="member.id")  # the sharer, not the visitor
    network: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime)
    # A link unfurler or crawler (or a HEAD request), not a person.
    is_preview: bool = False
    # The same visitor on the same link within 30 minutes of their last counted click.
    is_repeat: bool = False
    # A keyed hash of the day, link, address and user agent; neither is ever stored.
    visitor: str = Field(max_length=32)


class Distribution(SQLModel, table=True):
    """An approved post waiting to be (or already) fanned out to the people it fits."""

    __tablename__ = "distribution"
    __table_args__ = (UniqueConstraint("post_id"), Index(None, "status", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    post_id: int = Field(foreign_key="post.id")
    # captioning (AI variants being written) → pending → planned
    status: str = Field(default="pending", max_length=16)
    # Caption variants by role ("" for everyone).
    variants: dict[str, list[str]] = Field(default_factory=dict, sa_type=json_type())
    recipients: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    planned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ShareSuggestion(SQLModel, table=True):
    """One person was (or will be) sent one post to share, with a caption chosen for them."""

    __tablename__ = "share_suggestion"
    __table_args__ = (
        UniqueConstraint("post_id", "member_id"),
        Index(None, "member_id", "local_day"),
        Index(None, "workspace_id", "deliver_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    post_id: int = Field(foreign_key="post.id")
    member_id: int = Field(foreign_key="member.id")
    # requester | voter | interest | team | find
    reason: str = Field(max_length=16)
    caption: str = Field(default="", max_length=3000)
    deliver_at: datetime = Field(sa_type=UTCDateTime)
    # The recipient's calendar day of delivery: the daily cap counts suggestions per day.
    local_day: date
    created_at: datetime = Field(sa_type=UTCDateTime)


class Share(SQLModel, table=True):
    """A share button pressed: the intent to post a link, told apart from clicks on it."""

    __tablename__ = "share"
    __table_args__ = (
        Index(None, "workspace_id", "at"),
        Index(None, "post_id", "at"),
        Index(None, "member_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    post_id: int = Field(foreign_key="post.id")
    member_id: int = Field(foreign_key="member.id")
    network: str = Field(max_length=16)
    link_id: int = Field(foreign_key="tracked_link.id")
    at: datetime = Field(sa_type=UTCDateTime)


class Win(SQLModel, table=True):
    """Something good that happened in a deal, and the post that helped, in the logger's words."""

    __tablename__ = "win"
    __table_args__ = (Index(None, "workspace_id", "at"), Index(None, "post_id"))

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    member_id: int = Field(foreign_key="member.id")
    post_id: int | None = Field(default=None, foreign_key="post.id")
    kind: str = Field(max_length=16)  # meeting | opportunity | deal | other
    account: str = Field(default="", max_length=200)
    description: str = Field(max_length=1000)
    value: int | None = None  # whole units of the company's currency
    at: datetime = Field(sa_type=UTCDateTime)


class Digest(SQLModel, table=True):
    """One weekly digest for one channel: the row that makes it happen exactly once.

    The channel `@notes` stands for the week's personal notes, sent once per workspace.
    """

    __tablename__ = "digest"
    __table_args__ = (
        UniqueConstraint("workspace_id", "channel", "week"),
        UniqueConstraint("chart_code"),
        UniqueConstraint("page_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    channel: str = Field(max_length=128)
    week: str = Field(max_length=10)  # the ISO week reported on, like 2026-W48
    status: str = Field(default="queued", max_length=16)  # queued | sent | failed
    # The chart (`/c/{chart_code}.png`) and the whole digest (`/d/{page_code}`): random codes,
    # so no workspace's digests can be listed by counting.
    chart_code: str = Field(default_factory=random_code, max_length=32)
    page_code: str = Field(default_factory=random_code, max_length=32)
    # The figures as they were when the digest was built: the page and the chart read them.
    figures: dict[str, Any] | None = Field(default=None, sa_type=json_type())
    # Drawn on the first request for the chart, then kept.
    chart_png: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime)


class InboundEvent(SQLModel, table=True):
    """Platform event ids already processed, so retried deliveries are acknowledged only."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("platform", "workspace_external_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_external_id: str = Field(max_length=64)
    event_id: str = Field(max_length=128)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index(None, "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    dedupe_key: str = Field(max_length=200)
    kind: str = Field(max_length=24)  # message | update | home
    target: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    ref_key: str | None = Field(default=None, max_length=200)
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MessageRef(SQLModel, table=True):
    """Where a sent message landed (channel and platform id), so it can be updated later."""

    __tablename__ = "message_ref"
    __table_args__ = (UniqueConstraint("workspace_id", "ref_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    ref_key: str = Field(max_length=200)
    channel: str = Field(max_length=128)
    message_id: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Embedding(SQLModel, table=True):
    """A cached embedding vector, keyed by model and a hash of the text it was computed from."""

    __tablename__ = "embedding"
    __table_args__ = (UniqueConstraint("workspace_id", "model", "text_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    model: str = Field(max_length=100)
    text_hash: str = Field(max_length=64)
    dimensions: int
    vector: bytes = Field(sa_type=LargeBinary)  # float32, little-endian
    created_at: datetime = Field(sa_type=UTCDateTime)


class ConversationReference(SQLModel, table=True):
    """Where the bot can speak in Teams without being spoken to: one row per conversation.

    Written on every inbound turn and on install and membership updates, so proactive
    messages (pings, reviews, shares, digests) reach people and channels later.
    """

    __tablename__ = "conversation_reference"
    __table_args__ = (
        UniqueConstraint("workspace_id", "conversation_id"),
        Index(None, "workspace_id", "kind", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    conversation_id: str = Field(max_length=256)
    kind: str = Field(max_length=16)  # personal | channel | groupChat
    # For a personal chat, the person's platform id; None for channels and group chats.
    user_id: str | None = Field(default=None, max_length=128)
    team_id: str | None = Field(default=None, max_length=256)
    name: str = Field(default="", max_length=200)
    tenant_id: str = Field(max_length=64)
    service_url: str = Field(max_length=500)
    bot_id: str = Field(max_length=128)
    # The platform's serialized reference, as given on the last turn in this conversation.
    reference: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    # False once the app was removed from this conversation: nothing is sent there.
    installed: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TeamsFormCard(SQLModel, table=True):
    """A form shown as a card in Teams, so its submission can be read and re-shown with errors.

    Keyed by who it was shown to, the form and a hash of its state: what a card's submit
    data carries back.
    """

    __tablename__ = "teams_form_card"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", "form_id", "state_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    user_id: str = Field(max_length=128)
    form_id: str = Field(max_length=64)
    state_key: str = Field(max_length=64)
    form: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ClickTally(SQLModel, table=True):
    """Counted clicks (not previews, not repeats) per local day, post, sharer and network.

    Kept up to date by the click writer in the same transaction as the click rows, so the
    digests, notes and `stats` add up a few rows per link and day instead of every click.
    `day` is the calendar day in the workspace's time zone when the click was written.
    """

    __tablename__ = "click_tally"

    # The key leads with (workspace, day): every read is one workspace's range of days.
    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    day: date = Field(primary_key=True)
    post_id: int = Field(foreign_key="post.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)  # the sharer
    network: str = Field(max_length=16, primary_key=True)
    clicks: int = 0


class DailyClicks(SQLModel, table=True):
    """Counted clicks per workspace and local day: the click tally added up by day.

    Kept by the click writer in the same upsert path and transaction as the tally, so the
    digest's eight-week series reads one row a day instead of a row per link and day.
    """

    __tablename__ = "daily_clicks"

    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    day: date = Field(primary_key=True)
    clicks: int = 0


class SendLimit(SQLModel, table=True):
    """Recent send times of one platform limit (a Slack workspace, a Teams conversation or
    tenant), shared by every dispatcher on this database (`adapters/limits/postgres.py`).

    Times are seconds of PostgreSQL's own clock; reservations may lie a little ahead.
    """

    __tablename__ = "send_limit"

    key: str = Field(primary_key=True, max_length=300)
    times: list[float] = Field(default_factory=list, sa_type=json_type())
    blocked_until: float = 0.0
    # After this, the row says nothing any more and may be deleted.
    expires_at: float = Field(default=0.0, index=True)


class LinkedInAccount(SQLModel, table=True):
    """A member's LinkedIn, connected through OAuth: the access token is sealed, never plain."""

    __tablename__ = "linkedin_account"
    __table_args__ = (UniqueConstraint("member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    # The member's LinkedIn id (OpenID `sub`): posts are authored by urn:li:person:{sub}.
    person_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    # AES-GCM under a key derived from FLYWHEEL_SECRET_KEY, bound to this member.
    token: str = Field(max_length=4000)
    scope: str = Field(default="", max_length=200)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # When the reminder before expiry, and the reconnect prompt after it, were queued.
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expiry_told_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Disconnected: the token is revoked at LinkedIn by the worker, then the row goes.
    disconnected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    connected_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class LinkedInState(SQLModel, table=True):
    """An OAuth `state` already used: a callback carrying it again is refused."""

    __tablename__ = "linkedin_state"
    __table_args__ = (UniqueConstraint("nonce"),)

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=64)
    workspace_id: int = Field(foreign_key="workspace.id")
    member_id: int = Field(foreign_key="member.id")
    # Kept until the state would have expired anyway; housekeeping may forget it after.
    used_at: datetime = Field(sa_type=UTCDateTime, index=True)


class LinkedInPost(SQLModel, table=True):
    """One member posting one approved post on LinkedIn: now, or at a time they chose.

    scheduled → sending → posted | unconfirmed (the answer was lost) | failed, or back to
    scheduled (LinkedIn busy, nothing published); scheduled → waiting (the token expired)
    → scheduled on reconnecting; scheduled | waiting → cancelled.
    """

    __tablename__ = "linkedin_post"
    __table_args__ = (
        Index(None, "status", "due_at"),
        Index(None, "workspace_id", "member_id"),
        Index(None, "post_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    post_id: int = Field(foreign_key="post.id")
    member_id: int = Field(foreign_key="member.id")
    # The member's own tracked link for the post on LinkedIn: the article's source.
    link_id: int = Field(foreign_key="tracked_link.id")
    caption: str = Field(max_length=3000)
    status: str = Field(default="scheduled", max_length=16)
    due_at: datetime = Field(sa_type=UTCDateTime)
    # Attempts that reached no one (LinkedIn busy or unreachable); a sent request is never
    # repeated by itself.
    attempts: int = 0
    # The post's URN from LinkedIn's answer (`x-restli-id`), once confirmed.
    urn: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SigninState(SQLModel, table=True):
    """A sign-in to the program page under way: its `state` (kept as a hash) and `nonce`,
    used once, within minutes, by the browser that started it."""

    __tablename__ = "signin_state"

    state_hash: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=16)
    nonce: str = Field(max_length=64)
    # Where to go once signed in: a path of this site, never another one.
    next_path: str = Field(default="/", max_length=500)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
