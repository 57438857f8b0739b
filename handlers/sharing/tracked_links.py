"""Tracked links: one link per post, sharer and network, leading only to its own post.

A tracked link is `{PUBLIC_BASE_URL}/r/{code}`. It leads to the post's canonical URL with
UTM parameters, or, for a post that lives only as text, to its public page
`{PUBLIC_BASE_URL}/p/{public_code}`. Both codes are random (96 bits), so nobody can list a
workspace's posts or links by counting. What a visit to a link counts for is in `visits`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from sqlalchemy import and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.context import Scope
from storage.models import CODE_LENGTH, Member, Post, TrackedLink, random_code
from storage.upsert import insert_ignore_many

# Where a link is shared. `page` is the plain link, pasted anywhere else (a chat, a web page).
NETWORKS = ("linkedin", "x", "email", "page")
UTM_MEDIUM = "employee_advocacy"

_CODE = re.compile(rf"[A-Za-z0-9_-]{{{CODE_LENGTH}}}")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a tracked link leads, and whose link it is."""

    link_id: int
    workspace_id: int
    post_id: int
    member_id: int  # the sharer
    network: str
    location: str


def valid_code(code: str) -> bool:
    """Whether `code` could be a code at all: checked before the database is asked."""
    return len(code) == CODE_LENGTH and _CODE.fullmatch(code) is not None


def tracked_url(public_base_url: str, code: str) -> str:
    """The link people share: `{PUBLIC_BASE_URL}/r/{code}`."""
    return f"{public_base_url.rstrip('/')}/r/{code}"


def page_url(public_base_url: str, post: Post) -> str:
    """The public read-only page of a post that lives only as text."""
    return f"{public_base_url.rstrip('/')}/p/{post.public_code}"


def destination(post: Post, network: str, public_base_url: str) -> str:
    """Where a tracked link of `post` on `network` leads: its URL with UTM, or its page."""
    url = post.canonical_url
    if url is None or not web_address(url):
        return page_url(public_base_url, post)
    return with_utm(
        url, {"utm_source": network, "utm_medium": UTM_MEDIUM, "utm_campaign": post.slug}
    )


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with `utm` as its only utm_* parameters; other parameters kept byte for byte."""
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and not unquote_plus(pair.split("=", 1)[0]).lower().startswith("utm_")
    ]
    kept += [f"{name}={quote(value, safe='')}" for name, value in utm.items()]
    netloc = parts.netloc
    if not netloc.isascii():
        netloc = _ascii_netloc(netloc)
    rebuilt = urlunsplit(parts._replace(netloc=netloc, query="&".join(kept)))
    # A Location header carries ASCII only: anything else is percent-encoded, once.
    return quote(rebuilt, safe="!#$%&'()*+,-./:;=?@[]_~")


def web_address(url: str) -> bool:
    """Whether `url` is an http(s) address a browser can be sent to."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _ascii_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.partition(":")
    return f"{userinfo}{at}{host.encode('idna').decode()}{colon}{port}"


async def links_for(
    scope: Scope, post: Post, members: Sequence[Member], networks: Sequence[str]
) -> dict[tuple[int, str], TrackedLink]:
    """Links for many sharers at once (a fan-out), by (member id, network); two statements."""
    unknown = set(networks) - set(NETWORKS)
    if unknown:
        raise ValueError(f"unknown networks {sorted(unknown)}")
    if post.workspace_id != scope.workspace_id or any(
        m.workspace_id != scope.workspace_id for m in members
    ):
        raise ValueError("a tracked link joins a post and a member of the scope's workspace")
    member_ids = [m.id for m in members if m.id is not None]
    if not member_ids or not networks:
        return {}
    rows = [
        {
            "workspace_id": scope.workspace_id,
            "post_id": post.id,
            "member_id": member_id,
            "network": network,
            "code": random_code(),
            "intent_code": random_code(),
            "created_at": scope.now,
        }
        for member_id in member_ids
        for network in networks
    ]
    table: Any = TrackedLink.__table__  # type: ignore[attr-defined]
    await insert_ignore_many(scope.session, table, rows, ("post_id", "member_id", "network"))
    found: dict[tuple[int, str], TrackedLink] = {}
    for start in range(0, len(member_ids), 2000):
        query = select(TrackedLink).where(
            TrackedLink.post_id == post.id,
            col(TrackedLink.member_id).in_(member_ids[start : start + 2000]),
            col(TrackedLink.network).in_(list(networks)),
        )
        for link in (await scope.session.exec(query)).all():
            found[(link.member_id, link.network)] = link
    return found


async def resolve(session: AsyncSession, code: str, public_base_url: str) -> Target | None:
    """The link with this code and where it leads, or None; only ever to its own post."""
    if not valid_code(code):
        return None
    query = (
        select(TrackedLink, Post)
        .join(
            Post,
            and_(
                col(Post.id) == TrackedLink.post_id,
                # A link leads to a post of its own workspace, whatever else is in the row.
                col(Post.workspace_id) == TrackedLink.workspace_id,
            ),
        )
        .where(TrackedLink.code == code)
    )
    row = (await session.exec(query)).first()
    if row is None:
        return None
    link, post = row
    assert link.id is not None
    return Target(
        link_id=link.id,
        workspace_id=link.workspace_id,
        post_id=link.post_id,
        member_id=link.member_id,
        network=link.network,
        location=destination(post, link.network, public_base_url),
    )


async def public_post(session: AsyncSession, code: str) -> Post | None:
    """The text-only post whose public page this is, or None (unknown, or it lives elsewhere)."""
    if not valid_code(code):
        return None
    post = (await session.exec(select(Post).where(Post.public_code == code))).first()
    if post is None or (post.canonical_url is not None and web_address(post.canonical_url)):
        return None
    return post
