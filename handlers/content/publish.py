"""Existing content becoming a post: one article per workspace, however it arrived."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, or_, select

from handlers.core.context import Scope
from handlers.review.decisions import unique_slug
from handlers.sharing import distribution
from storage.models import ContentLink, Member, Post

# A link is waiting for these: it is one article already, even before it is a post.
OPEN = ("fetching", "preview", "in_review")
STALE = timedelta(days=1)


def live(now: datetime) -> object:
    """The SQL condition for a post that is still shared at `now`."""
    return (col(Post.retired_at).is_(None)) & or_(
        col(Post.ends_at).is_(None), col(Post.ends_at) > now
    )


def is_live(post: Post, now: datetime) -> bool:
    """Whether a post is still shared: not retired, and not past its end date."""
    return post.retired_at is None and (post.ends_at is None or post.ends_at > now)


async def existing_post(scope: Scope, canonical_url: str) -> Post | None:
    """The post of this workspace for this article, if there is one."""
    query = (
        select(Post)
        .where(Post.workspace_id == scope.workspace_id, Post.canonical_url == canonical_url)
        .order_by(col(Post.id))
        .limit(1)
    )
    return (await scope.session.exec(query)).first()


async def open_link(
    scope: Scope, canonical_url: str, *, other_than: int | None = None
) -> ContentLink | None:
    """A link of this workspace for this article still on its way to becoming a post."""
    query = select(ContentLink).where(
        ContentLink.workspace_id == scope.workspace_id,
        ContentLink.canonical_url == canonical_url,
        col(ContentLink.status).in_(OPEN),
        # A preview nobody finished within a day holds the article for nobody.
        or_(col(ContentLink.status) != "preview", col(ContentLink.updated_at) > scope.now - STALE),
    )
    if other_than is not None:
        query = query.where(col(ContentLink.id) != other_than)
    return (await scope.session.exec(query.limit(1))).first()


async def publish(
    scope: Scope, link: ContentLink, *, approver: Member, audience: str = "interests"
) -> Post:
    """The link becomes a post, announced and distributed like a drafted one."""
    adder = await scope.session.get(Member, link.member_id)
    assert adder is not None and approver.id is not None
    post = Post(
        workspace_id=scope.workspace_id,
        source=link.source,
        feed_id=link.feed_id,
        audience=audience,
        slug=await unique_slug(scope.session, scope.workspace_id, link.title),
        title=link.title,
        summary=link.description,
        body=link.why,
        canonical_url=link.canonical_url,
        image_url=link.image_url,
        captions=list(link.captions),
        tags=list(link.tags),
        author_id=link.member_id,
        approved_by_id=approver.id,
        published_at=scope.now,
        ends_at=link.ends_at,
    )
    scope.session.add(post)
    await scope.session.flush()
    link.status = "approved"
    link.post_id = post.id
    link.decided_by_id = approver.id
    link.updated_at = scope.now
    scope.session.add(link)
    await distribution.start(scope, post, author=adder, requester=None)
    return post
