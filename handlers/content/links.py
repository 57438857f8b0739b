"""`share <url>`: existing content in by its link, through a preview and the reviewers.

The command checks the link and answers at once; the page is read by the worker (a slow
site must not hold Slack's three-second acknowledgement, nor a transaction): it sends the
person a preview with the page's title, description and image, and a button to add
captions, tags and why colleagues should share it. A reviewer's link is published when
they send it; anyone else's goes to the reviewers, under the workspace's compliance rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

import structlog
from sqlmodel import col, select

from handlers.content import page, publish, text, urls
from handlers.core import actions, lookup, workspace_settings
from handlers.core.context import Config, Context, Scope, channel, dm
from handlers.core.errors import DomainError, FormInvalid, InvalidTransition, NotAllowed
from handlers.core.interactions import NO_REPLY, Action, Command, Reply, Submission
from handlers.core.markup import clip, md, quoted
from handlers.core.members import mention
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ContextLine,
    DateField,
    Form,
    FormField,
    Image,
    Message,
    Section,
    TextField,
    notice,
)
from handlers.core.ports import AI, Clock, FetchError
from handlers.drafting import compliance
from handlers.sharing import captions as caption_pool
from handlers.sharing import share
from storage.db import SessionFactory, transaction
from storage.models import ContentLink, Feed, Member, Post, ShareSuggestion, Workspace

if TYPE_CHECKING:
    from handlers.core.router import Router

log = structlog.get_logger(__name__)

FORM_ID = "link_form"
REJECT_FORM_ID = "link_reject_form"
APPROVE_FORM_ID = "link_approve_form"
LINK_GONE = "I can't find that link any more — share it again with `share <url>`."
CAPTION_MAX = 3000
CAPTIONS = 3
WHY_MAX = 500
TAGS_MAX = 10
TAG_CHARS = 40
REASON_MAX = 2000
ALREADY_SHARED = "That article is already shared — here are your links."
# Links read per run of the worker; the rest wait for the next run.
FETCH_BATCH = 20


# -- the command ---------------------------------------------------------------------------


async def share_link(ctx: Context, command: Command) -> Reply:
    """`share <url>` (or the message shortcut): check the link, then read it in the worker."""
    typed = command.text.strip()
    if not typed and command.source is not None:
        typed = urls.first_link(command.source.text) or ""
        if not typed:
            raise DomainError(
                "That message has no http or https link in it, so there is nothing to share."
            )
    try:
        url = urls.checked(typed.split()[0] if typed else "")
    except urls.BadLink as bad:
        raise DomainError(str(bad)) from None
    canonical = urls.canonical(url)
    known = await _already_known(ctx, canonical)
    if known is not None:
        return known
    link = ContentLink(
        workspace_id=ctx.workspace_id,
        member_id=ctx.member_id,
        url=url,
        canonical_url=canonical,
        status="fetching",
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(link)
    return Reply.say(f"🔎 Reading {url} — I'll send you a preview in a moment.")


async def _already_known(ctx: Context, canonical: str) -> Reply | None:
    """An answer when this article is a post already (my share links), or on its way."""
    post = await publish.existing_post(ctx, canonical)
    if post is not None:
        if not publish.is_live(post, ctx.now):
            raise DomainError(f"“{post.title}” was shared before and is no longer shared.")
        message = await share.personal_share(
            ctx, post, ctx.member, caption=share.caption_for(post, ctx.member_id), reason="find"
        )
        return Reply(
            message=Message(
                text=f"That article is already shared: {post.title}",
                blocks=(
                    Section(text="That article is already shared — here are your links."),
                    *message.blocks,
                ),
            ),
            private=True,
        )
    pending = await publish.open_link(ctx, canonical)
    if pending is not None:
        raise DomainError(
            "That article was shared a moment ago and is on its way to the reviewers."
        )
    return None


# -- reading the page, in the worker -------------------------------------------------------


async def fetch_pending(sessions: SessionFactory, clock: Clock, config: Config, ai: AI) -> int:
    """Read the links waiting to be read, no transaction open while a site answers."""
    fetcher = config.fetcher
    if fetcher is None:
        return 0
    async with sessions() as session:
        waiting = (
            await session.exec(
                select(ContentLink.id, ContentLink.url)
                .where(ContentLink.status == "fetching", ContentLink.source == "link")
                .order_by(col(ContentLink.id))
                .limit(FETCH_BATCH)
            )
        ).all()
    done = 0
    for link_id, url in waiting:
        try:
            fetched = await fetcher.fetch(url, kind="page")
            info: page.PageInfo | FetchError = page.parse(
                fetched.body, fetched.charset, fetched.url
            )
        except FetchError as error:
            info = error
        async with transaction(sessions) as session:
            link = await session.get(ContentLink, link_id)
            if link is None or link.status != "fetching":
                continue
            workspace = await session.get(Workspace, link.workspace_id)
            member = await session.get(Member, link.member_id)
            assert workspace is not None and member is not None
            scope = Scope(session, clock, config, workspace)
            await _read(scope, link, member, info)
            done += 1
    return done


async def _read(
    scope: Scope, link: ContentLink, member: Member, info: page.PageInfo | FetchError
) -> None:
    """The page read (or not): the person gets the preview, or one line saying why not."""
    key = f"link:{link.id}:read"
    if isinstance(info, FetchError):
        log.info("link.fetch_refused", link=link.id, reason=info.reason)
        await scope.session.delete(link)
        await scope.send(
            dm(member.user_id), notice(f"I couldn't add {link.url}: {info.message}"), key=key
        )
        return
    # The page may name another address as the article's own: one post per article.
    post = await publish.existing_post(scope, info.canonical_url)
    if post is not None or await publish.open_link(scope, info.canonical_url, other_than=link.id):
        await scope.session.delete(link)
        line = (
            f"“{post.title}” is already shared — find it with `find`."
            if post is not None
            else "That article was shared a moment ago and is on its way to the reviewers."
        )
        await scope.send(dm(member.user_id), notice(line), key=key)
        return
    link.canonical_url = info.canonical_url
    link.title = info.title
    link.description = info.description
    link.image_url = info.image_url
    link.site_name = info.site_name
    link.captions = suggested_captions(info.title, info.description)
    link.status = "preview"
    link.updated_at = scope.now
    scope.session.add(link)
    await scope.send(dm(member.user_id), preview(link), key=key, ref_key=f"link:{link.id}")


def suggested_captions(title: str, description: str) -> list[str]:
    """Captions to start from: the title in a few voices, and the description."""
    found = caption_pool.pool([], title)
    if description:
        found.append(text.plain(f"{title} — {description}", 280))
    return found[:CAPTIONS]


def preview(link: ContentLink) -> Message:
    """What the page says about itself, and the button to add the rest."""
    blocks: list[Block] = [
        Section(text=md("*{}*", link.title)),
    ]
    if link.description:
        blocks.append(Section(text=link.description))
    if link.image_url and link.image_url.startswith("https://"):
        blocks.append(Image(url=link.image_url, alt=clip(link.title, 100) or "Preview image"))
    blocks += [
        ContextLine(text=" · ".join(p for p in (link.site_name, link.canonical_url or "") if p)),
        Buttons(
            buttons=(
                Button(
                    label="Add details and share",
                    action=actions.LINK_EDIT,
                    value=str(link.id),
                    style="primary",
                ),
                Button(label="Cancel", action=actions.LINK_CANCEL, value=str(link.id)),
            )
        ),
    ]
    return Message(text=f"Preview: {link.title}", blocks=tuple(blocks))


# -- the details form ----------------------------------------------------------------------


async def _mine(ctx: Context, raw: str) -> ContentLink:
    link = await lookup.get(ctx, ContentLink, raw, LINK_GONE)
    if link.member_id != ctx.member_id:
        raise NotAllowed("This link was shared by a colleague: only they can add its details.")
    if link.status != "preview":
        raise InvalidTransition(
            "This link has been sent already." if link.status != "fetching" else LINK_GONE
        )
    return link


def _is_reviewer(ctx: Context) -> bool:
    return ctx.member.user_id in workspace_settings.load(ctx.workspace).reviewers


def details_form(link: ContentLink, *, reviewer: bool) -> Form:
    fields: list[FormField] = [
        TextField(name="title", label="Title", initial=link.title, max_length=text.TITLE_MAX),
        TextField(
            name="description",
            label="Description",
            initial=link.description,
            multiline=True,
            optional=True,
            max_length=text.DESCRIPTION_MAX,
        ),
    ]
    for n in range(CAPTIONS):
        fields.append(
            TextField(
                name=f"caption_{n + 1}",
                label=f"Suggested caption {n + 1}",
                initial=link.captions[n] if n < len(link.captions) else "",
                multiline=True,
                optional=True,
                max_length=CAPTION_MAX,
            )
        )
    fields += [
        TextField(
            name="tags",
            label="Tags",
            initial=", ".join(link.tags),
            optional=True,
            placeholder="kubernetes, security",
            hint="Comma-separated: colleagues interested in these get it.",
        ),
        TextField(
            name="why",
            label="Why should colleagues share it?",
            initial=link.why,
            multiline=True,
            max_length=WHY_MAX,
        ),
    ]
    if reviewer:
        fields.append(
            DateField(
                name="ends_on",
                label="Stop sharing after",
                optional=True,
                hint="Leave empty to share it until someone retires it.",
            )
        )
    return Form(
        form_id=FORM_ID,
        title="Share with the company",
        submit_label="Publish" if reviewer else "Send for review",
        intro=(Section(text=md("*{}*", link.title)), ContextLine(text=link.canonical_url or "")),
        fields=tuple(fields),
        state=str(link.id),
    )


async def edit(ctx: Context, action: Action) -> Reply:
    """`link_edit`: the details form over the preview."""
    link = await _mine(ctx, action.value)
    return Reply(form=details_form(link, reviewer=_is_reviewer(ctx)))


async def cancel(ctx: Context, action: Action) -> Reply:
    """`link_cancel`: the person changed their mind; nothing stays behind."""
    link = await _mine(ctx, action.value)
    await ctx.session.delete(link)
    await ctx.update(f"link:{link.id}", notice("Not shared."), key=f"link:{link.id}:cancelled")
    return Reply.say("Fine — I won't share that one.")


def _value(submission: Submission, name: str) -> str:
    raw = submission.values.get(name)
    if isinstance(raw, tuple):
        return raw[0] if raw else ""
    return (raw or "").strip()


def parse_tags(raw: str) -> list[str]:
    return list(dict.fromkeys(t.strip().lstrip("#").lower() for t in raw.split(",") if t.strip()))


async def submit(ctx: Context, submission: Submission) -> Reply:
    """The details form: a reviewer's link is published; anyone else's goes to review."""
    link = await _mine(ctx, submission.state)
    reviewer = _is_reviewer(ctx)
    errors: dict[str, str] = {}
    title = _value(submission, "title")
    if not title:
        errors["title"] = "Give it a title."
    elif len(title) > text.TITLE_MAX:
        errors["title"] = f"Keep the title under {text.TITLE_MAX} characters."
    description = _value(submission, "description")
    if len(description) > text.DESCRIPTION_MAX:
        errors["description"] = f"Keep it under {text.DESCRIPTION_MAX} characters."
    captions: list[str] = []
    for n in range(CAPTIONS):
        caption = _value(submission, f"caption_{n + 1}")
        if len(caption) > CAPTION_MAX:
            errors[f"caption_{n + 1}"] = f"Keep captions under {CAPTION_MAX} characters."
        elif caption:
            captions.append(caption)
    tags = parse_tags(_value(submission, "tags"))
    if len(tags) > TAGS_MAX or any(len(t) > TAG_CHARS for t in tags):
        errors["tags"] = f"Up to {TAGS_MAX} tags of at most {TAG_CHARS} characters each."
    why = _value(submission, "why")
    if not why:
        errors["why"] = "Say in a line why colleagues should share it."
    elif len(why) > WHY_MAX:
        errors["why"] = f"Keep it under {WHY_MAX} characters."
    ends_at = _ends_at(_value(submission, "ends_on"), ctx.now, errors) if reviewer else None
    settings = workspace_settings.load(ctx.workspace)
    if not reviewer and not settings.reviewers:
        errors["why"] = "No reviewers are set up yet — ask an admin to choose them with `admin`."
    if errors:
        raise FormInvalid(errors)
    broken = compliance.check(
        compliance.Content(
            title=title,
            body=description,
            canonical_url=link.canonical_url,
            captions=tuple(captions),
        ),
        _link_rules(settings.compliance()),
    )
    if broken:
        raise FormInvalid({"why": " ".join(broken)})
    if link.canonical_url and await publish.existing_post(ctx, link.canonical_url):
        raise FormInvalid({"title": "This article was shared by someone else in the meantime."})
    link.title, link.description, link.captions = title, description, captions
    link.tags, link.why, link.ends_at, link.updated_at = tags, why, ends_at, ctx.now
    ctx.session.add(link)
    await ctx.update(
        f"link:{link.id}",
        notice(f"Sent: {title}" if reviewer else f"Sent for review: {title}"),
        key=f"link:{link.id}:sent",
    )
    if reviewer:
        await publish.publish(ctx, link, approver=ctx.member)
        await ctx.send(
            dm(ctx.member.user_id),
            notice(f"Published: “{title}” is on its way to colleagues."),
            key=f"link:{link.id}:published",
        )
        return NO_REPLY
    link.status = "in_review"
    await send_for_review(ctx, link, ctx.member)
    await ctx.send(
        dm(ctx.member.user_id),
        notice(f"Sent for review: “{title}”. I'll tell you what the reviewers say."),
        key=f"link:{link.id}:in_review",
    )
    return NO_REPLY


def _link_rules(rules: compliance.Rules) -> compliance.Rules:
    """A page written elsewhere carries no disclosure and has its own length: the rules on
    words and on where links point apply; those on a drafted body do not."""
    return compliance.Rules(
        banned_phrases=rules.banned_phrases, allowed_domains=rules.allowed_domains
    )


def _ends_at(raw: str, now: datetime, errors: dict[str, str]) -> datetime | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors["ends_on"] = "Use a date like 2026-12-31."
        return None
    ends = datetime.combine(day, time(23, 59), tzinfo=UTC)
    if ends <= now:
        errors["ends_on"] = "Pick a day from today on."
        return None
    return ends


# -- review --------------------------------------------------------------------------------


def review_message(link: ContentLink, adder: Member, origin: str) -> Message:
    value = str(link.id)
    blocks: list[Block] = [
        Section(text=md("*Review:* {} — {} by {}", link.title, origin, mention(adder))),
    ]
    if link.description:
        blocks.append(Section(text=link.description))
    blocks.append(ContextLine(text=f"Link: {link.canonical_url}"))
    if link.why:
        blocks.append(Section(text=md("*Why share it:* {}", quoted(link.why))))
    if link.captions:
        blocks.append(
            ContextLine(text="Captions: " + " | ".join(clip(c, 200) for c in link.captions))
        )
    if link.tags:
        blocks.append(ContextLine(text="Tags: " + ", ".join(link.tags)))
    blocks.append(
        Buttons(
            buttons=(
                Button(label="Approve", action=actions.LINK_APPROVE, value=value, style="primary"),
                Button(label="With an end date…", action=actions.LINK_APPROVE_UNTIL, value=value),
                Button(label="Reject", action=actions.LINK_REJECT, value=value, style="danger"),
            )
        )
    )
    return Message(text=f"Please review: {link.title}", blocks=tuple(blocks))


def _review_refs(scope: Scope, link: ContentLink) -> list[tuple[dict[str, str], str]]:
    settings = workspace_settings.load(scope.workspace)
    ref = f"link-review:{link.id}"
    if settings.review_channel:
        return [(channel(settings.review_channel), ref)]
    return [(dm(r), f"{ref}:{r}") for r in settings.reviewers]


async def send_for_review(
    scope: Scope, link: ContentLink, adder: Member, origin: str = "shared"
) -> None:
    """The link to the review channel, or to each reviewer: news they did not ask for, so
    a reviewer's direct message waits for their working hours."""
    message = review_message(link, adder, origin)
    for target, ref in _review_refs(scope, link):
        await scope.send(target, message, key=ref, ref_key=ref, unprompted=True)


async def _close_review(ctx: Context, link: ContentLink, line: str) -> None:
    closed = Message(
        text=line, blocks=(Section(text=md("*{}*", link.title)), ContextLine(text=line))
    )
    for _, ref in _review_refs(ctx, link):
        if not await ctx.cancel(ref):
            await ctx.update(ref, closed, key=f"{ref}:closed")


async def _to_decide(ctx: Context, raw: str) -> ContentLink:
    settings = workspace_settings.load(ctx.workspace)
    if ctx.member.user_id not in settings.reviewers:
        raise NotAllowed("Only the workspace's reviewers can decide on shared links.")
    link = await lookup.get(ctx, ContentLink, raw, LINK_GONE)
    if link.status == "approved":
        raise InvalidTransition("This link is already approved.")
    if link.status == "rejected":
        raise InvalidTransition("This link was rejected already.")
    if link.status != "in_review":
        raise InvalidTransition("This link isn't waiting for review.")
    if link.member_id == ctx.member_id and link.source == "link":
        raise NotAllowed("You shared this link, so another reviewer has to decide on it.")
    return link


async def approve(ctx: Context, action: Action) -> Reply:
    """`link_approve`: the link becomes a post; whoever shared it hears it is live."""
    return await _approve(ctx, await _to_decide(ctx, action.value))


async def open_approve_until(ctx: Context, action: Action) -> Reply:
    """`link_approve_until`: approve with the last day the post is shared."""
    link = await _to_decide(ctx, action.value)
    return Reply(
        form=Form(
            form_id=APPROVE_FORM_ID,
            title="Approve until a date",
            submit_label="Approve",
            intro=(Section(text=md("*{}*", link.title)),),
            fields=(
                TextField(
                    name="ends_on",
                    label="Shared until (YYYY-MM-DD)",
                    placeholder="2026-12-31",
                    max_length=10,
                    hint="After this day it is no longer suggested or found; its links "
                    "keep working.",
                ),
            ),
            state=str(link.id),
        )
    )


async def approve_until(ctx: Context, submission: Submission) -> Reply:
    """The end-date form: a bad or past date is said inline and nothing changes."""
    errors: dict[str, str] = {}
    raw = _value(submission, "ends_on")
    if not raw:
        raise FormInvalid({"ends_on": "Give the last day, like 2026-12-31."})
    ends = _ends_at(raw, ctx.now, errors)
    if errors:
        raise FormInvalid(errors)
    link = await _to_decide(ctx, submission.state)
    link.ends_at = ends
    await _approve(ctx, link)
    return NO_REPLY


async def _approve(ctx: Context, link: ContentLink) -> Reply:
    audience = "interests"
    if link.feed_id is not None:
        feed = await ctx.session.get(Feed, link.feed_id)
        audience = feed.audience if feed is not None else audience
    await publish.publish(ctx, link, approver=ctx.member, audience=audience)
    await _close_review(ctx, link, md("✅ Approved by {}.", mention(ctx.member)))
    adder = await ctx.session.get(Member, link.member_id)
    if adder is not None and link.source == "link":
        await ctx.send(
            dm(adder.user_id),
            notice(f"🎉 “{link.title}” was approved and is on its way to colleagues."),
            key=f"link:{link.id}:approved",
            unprompted=True,
        )
    return Reply.say(f"Approved: “{link.title}” is live.")


async def open_reject(ctx: Context, action: Action) -> Reply:
    """`link_reject`: the reason is required, so ask for it."""
    link = await _to_decide(ctx, action.value)
    return Reply(
        form=Form(
            form_id=REJECT_FORM_ID,
            title="Reject the link",
            submit_label="Reject",
            intro=(Section(text=md("*{}*", link.title)),),
            fields=(
                TextField(
                    name="comment",
                    label="Why is it rejected?",
                    multiline=True,
                    max_length=REASON_MAX,
                ),
            ),
            state=str(link.id),
        )
    )


async def reject(ctx: Context, submission: Submission) -> Reply:
    comment = _value(submission, "comment")
    if not comment:
        raise FormInvalid({"comment": "Give the reason — whoever shared it will read it."})
    if len(comment) > REASON_MAX:
        raise FormInvalid({"comment": f"Keep it under {REASON_MAX} characters."})
    link = await _to_decide(ctx, submission.state)
    link.status = "rejected"
    link.decided_by_id = ctx.member_id
    link.updated_at = ctx.now
    ctx.session.add(link)
    await _close_review(ctx, link, md("Rejected by {}.", mention(ctx.member)))
    adder = await ctx.session.get(Member, link.member_id)
    if adder is not None and link.source == "link":
        await ctx.send(
            dm(adder.user_id),
            notice(f"“{link.title}” was not approved: {comment}"),
            key=f"link:{link.id}:rejected",
            unprompted=True,
        )
    return NO_REPLY


# -- retiring ------------------------------------------------------------------------------


async def retire(ctx: Context, command: Command) -> Reply:
    """`retire <url or post address>`: a reviewer stops a post being suggested and shared."""
    if ctx.member.user_id not in workspace_settings.load(ctx.workspace).reviewers:
        raise NotAllowed("Only the workspace's reviewers can retire posts.")
    typed = command.text.strip()
    if not typed:
        raise DomainError("Say which post: `retire <its link>`.")
    post = await _post_named(ctx, typed.split()[0])
    if post is None:
        raise DomainError("I can't find a post with that link.")
    if post.retired_at is not None:
        raise InvalidTransition(f"“{post.title}” is retired already.")
    post.retired_at = ctx.now
    ctx.session.add(post)
    withdrawn = await withdraw_suggestions(ctx, post)
    log.info("post.retired", post=post.id, withdrawn=withdrawn)
    return Reply.say(
        f"Retired: “{post.title}” is no longer suggested or shared; its links still work."
    )


async def _post_named(ctx: Context, typed: str) -> Post | None:
    try:
        canonical = urls.canonical(urls.checked(typed))
    except urls.BadLink:
        canonical = None
    if canonical is not None:
        found = await publish.existing_post(ctx, canonical)
        if found is not None:
            return found
    code = typed.rstrip("/").rsplit("/", 1)[-1]
    query = select(Post).where(
        Post.workspace_id == ctx.workspace_id,
        (Post.public_code == code) | (Post.slug == code),
    )
    return (await ctx.session.exec(query)).first()


async def withdraw_suggestions(scope: Scope, post: Post) -> int:
    """Share suggestions of the post not sent yet are withdrawn; how many."""
    members: Sequence[int] = (
        await scope.session.exec(
            select(ShareSuggestion.member_id).where(
                ShareSuggestion.post_id == post.id, col(ShareSuggestion.deliver_at) > scope.now
            )
        )
    ).all()
    withdrawn = 0
    for member_id in members:
        if await scope.cancel(f"share:{post.id}:{member_id}"):
            withdrawn += 1
    return withdrawn


def register(router: Router) -> None:
    router.command(
        "share",
        usage="share <url>",
        summary="add existing content by its link: a preview, then review and distribution",
    )(share_link)
    router.command(
        "retire",
        usage="retire <url>",
        summary="stop suggesting and sharing a post (reviewers)",
    )(retire)
    router.action(actions.LINK_EDIT)(edit)
    router.action(actions.LINK_CANCEL)(cancel)
    router.action(actions.LINK_APPROVE)(approve)
    router.action(actions.LINK_APPROVE_UNTIL)(open_approve_until)
    router.form(APPROVE_FORM_ID)(approve_until)
    router.action(actions.LINK_REJECT)(open_reject)
    router.form(FORM_ID)(submit)
    router.form(REJECT_FORM_ID)(reject)
    router.job(fetch_pending)
