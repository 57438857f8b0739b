"""`find <words>`: the approved posts that best answer a question, ready to share.

The same lexical search as expert matching — the same words, stems and aliases, BM25
per field — over titles and tags (weighted highest), summaries and bodies. Each result
carries the seller's own share buttons, including a tracked email to send it straight to
a prospect.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func
from sqlmodel import col, select

from handlers.core import actions
from handlers.core.context import Context
from handlers.core.interactions import Command, Reply
from handlers.core.markup import md
from handlers.core.messages import Block, Button, Buttons, ContextLine, Divider, Message, Section
from handlers.core.wording import plural
from handlers.routing.matching import WeightedField
from handlers.routing.words import terms
from handlers.sharing import share, tracked_links
from storage.models import Post

if TYPE_CHECKING:
    from handlers.core.router import Router

RESULTS = 5
QUERY_MAX = 200
TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
# Results far weaker than the best (one common word in a long body) are noise.
MIN_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class PostIndex:
    """BM25 over one workspace's posts."""

    post_ids: tuple[int, ...]
    fields: tuple[WeightedField, WeightedField]

    @classmethod
    def build(cls, posts: list[tuple[int, str, list[str], str, str]]) -> PostIndex:
        heads = [terms(f"{title} {' '.join(tags)}") for _, title, tags, _, _ in posts]
        bodies = [terms(f"{summary} {body}") for _, _, _, summary, body in posts]
        return cls(
            tuple(post_id for post_id, *_ in posts),
            (WeightedField.build(TITLE_WEIGHT, heads), WeightedField.build(BODY_WEIGHT, bodies)),
        )

    def search(self, query: str, limit: int = RESULTS) -> list[int]:
        """Post ids, best match first; only posts that share a meaningful word with `query`."""
        words = set(terms(query))
        if not words or not self.post_ids:
            return []
        total = np.zeros(len(self.post_ids), dtype=np.float32)
        for field in self.fields:
            scores = field.scores(words) if field.retriever is not None else None
            if scores is not None:
                total += field.weight * scores
        best = float(total.max())
        if best <= 0:
            return []
        order = np.argsort(-total, kind="stable")[:limit]
        return [self.post_ids[i] for i in order if total[i] >= best * MIN_SHARE]


class PostIndexCache:
    """Post indexes per workspace, rebuilt when a post is added (posts never change)."""

    def __init__(self, max_workspaces: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, int], tuple[tuple[Any, ...], PostIndex]] = (
            OrderedDict()
        )
        self._max = max_workspaces

    async def index(self, ctx: Context) -> PostIndex:
        bind = ctx.session.bind
        key = (str(getattr(bind, "url", "")), ctx.workspace_id)
        fingerprint = tuple(
            (
                await ctx.session.exec(
                    select(func.count(col(Post.id)), func.max(col(Post.id))).where(
                        Post.workspace_id == ctx.workspace_id
                    )
                )
            ).one()
        )
        cached = self._entries.get(key)
        if cached is None or cached[0] != fingerprint:
            rows = (
                await ctx.session.exec(select(Post).where(Post.workspace_id == ctx.workspace_id))
            ).all()
            posts = [(p.id or 0, p.title, list(p.tags), p.summary, p.body) for p in rows]
            # Tokenizing thousands of posts takes a while: keep the event loop free.
            cached = (fingerprint, await asyncio.to_thread(PostIndex.build, posts))
            self._entries[key] = cached
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return cached[1]


SHARED_CACHE = PostIndexCache()


async def find(ctx: Context, command: Command) -> Reply:
    """`find <words>`: the best-matching approved posts, each with my share buttons."""
    query = " ".join(command.text.split())
    if not query:
        return Reply.say("Tell me what to look for, like `find multi-region failover`.")
    if len(query) > QUERY_MAX:
        return Reply.say(f"That's a long search — keep it under {QUERY_MAX} characters.")
    index = await SHARED_CACHE.index(ctx)
    found = index.search(query)
    if not found:
        return Reply(message=_nothing(query), private=True)
    posts = {
        p.id: p
        for p in (
            await ctx.session.exec(
                select(Post).where(Post.workspace_id == ctx.workspace_id, col(Post.id).in_(found))
            )
        ).all()
        if not share.retired(p, ctx.now)
    }
    # Retired posts stay in the index (it is rebuilt only when posts are added): they are
    # left out here instead.
    found = [post_id for post_id in found if post_id in posts]
    if not found:
        return Reply(message=_nothing(query), private=True)
    blocks: list[Block] = [Section(text=md("*Approved posts for “{}”*", query))]
    for post_id in found:
        post = posts[post_id]
        links = await tracked_links.links_for(ctx, post, [ctx.member], share.SHARE_NETWORKS)
        mine = {n: links[(ctx.member_id, n)] for n in share.SHARE_NETWORKS}
        linkedin = (await share.linkedin_buttons(ctx, post, [ctx.member_id])).get(ctx.member_id)
        blocks += [
            Divider(),
            Section(text=share.headline(post, ctx.config.public_base_url)),
            Buttons(
                buttons=(
                    *share.share_buttons(mine, ctx.config.public_base_url, linkedin),
                    Button(label="Log a win", action=actions.WIN_LOG, value=str(post.id)),
                )
            ),
        ]
    blocks.append(
        ContextLine(
            text="“Email it” opens a message with your own tracked link: send it to a prospect."
        )
    )
    text = f"{plural(len(found), 'approved post')} for “{query}”"
    # The buttons carry the asker's own tracked links: nobody else should press them.
    return Reply(message=Message(text=text, blocks=tuple(blocks)), private=True)


def _nothing(query: str) -> Message:
    return Message(
        text=f"No approved posts match “{query}” yet.",
        blocks=(
            Section(text=f"No approved posts match “{query}” yet."),
            Buttons(
                buttons=(
                    Button(
                        label="Request it",
                        action=actions.REQUEST_OPEN,
                        value=query[:150],
                        style="primary",
                    ),
                )
            ),
            ContextLine(text="A request reaches the colleagues who know the subject."),
        ),
    )


def register(router: Router) -> None:
    router.command(
        "find", usage="find <words>", summary="search approved posts, with share buttons"
    )(find)
