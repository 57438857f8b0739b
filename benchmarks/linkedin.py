"""LinkedIn: the worker publishing scheduled posts against the same calls made bare.

N members each have a connected LinkedIn (a sealed token) and one post due now, on a
temporary SQLite database (or PostgreSQL with `--postgres`). The worker's job (`run_posts`,
as `flywheel worker` runs it: claim a batch, open the sealed tokens, call LinkedIn side by
side, record the URNs and queue the members' messages) publishes them to the fake LinkedIn.
The baseline is the same number of `create_post` calls made directly with the same client,
one after the other, in the same run.

Targets: every post published exactly once and recorded with its URN. The rate is reported
against the bare calls' for comparison between runs, not held to a target: LinkedIn's own
limits on an app's posts a day are far below either rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import POSTGRES_URL, Figures, report, verdict

SECRET_KEY = "benchmark-secret-key-0123456789abcdef"


async def _run(count: int, database_url: str) -> Figures:
    from sqlmodel import select

    from adapters.linkedin import LinkedInClient
    from handlers.core.context import Config
    from handlers.core.ports import AI, SystemClock
    from handlers.core.sealing import Keyring
    from handlers.linkedin import connection, posting
    from handlers.linkedin.api import AccessToken, Article
    from handlers.sharing import tracked_links
    from storage.db import create_engine, session_factory, transaction
    from storage.migrate import upgrade
    from storage.models import LinkedInAccount, LinkedInPost
    from testing.builders import add_members, add_post, add_workspace
    from testing.fakes.linkedin import CLIENT_ID, CLIENT_SECRET, FakeLinkedIn, Member

    fake = await FakeLinkedIn().start()
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    ring = Keyring([SECRET_KEY])
    config = Config(public_base_url="https://go.acme.test", linkedin=True, keyring=ring)
    now = datetime.now(UTC)
    tokens: list[str] = []
    async with transaction(sessions) as session:
        workspace = await add_workspace(session, now, external_id="TBENCH")
        people = await add_members(session, workspace, (f"U{n:05d}" for n in range(count)), now)
        post = await add_post(
            session,
            workspace,
            people[0],
            now,
            topic="Zero-downtime migrations",
            slug="zero-downtime",
            title="Zero-downtime migrations",
            summary="How we moved without a minute of downtime.",
            canonical_url="https://blog.acme.test/zero-downtime",
        )
        from handlers.core.context import Scope

        scope = Scope(session, SystemClock(), config, workspace)
        links = await tracked_links.links_for(scope, post, people, ("linkedin",))
        for n, person in enumerate(people):
            token = f"AQV-bench-{n:06d}"
            fake.tokens[token] = Member(f"sub{n:06d}", f"Person {n}")
            tokens.append(token)
            session.add(
                LinkedInAccount(
                    workspace_id=workspace.id or 0,
                    member_id=person.id or 0,
                    person_id=f"sub{n:06d}",
                    name=f"Person {n}",
                    token=connection.seal(ring, AccessToken(token), person.id or 0),
                    expires_at=now + timedelta(days=60),
                    connected_at=now,
                    updated_at=now,
                )
            )
            session.add(
                LinkedInPost(
                    workspace_id=workspace.id or 0,
                    post_id=post.id or 0,
                    member_id=person.id or 0,
                    link_id=links[(person.id or 0, "linkedin")].id or 0,
                    caption=f"Our migration notes (#{n})",
                    status="scheduled",
                    due_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    client = LinkedInClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        oauth_url=fake.oauth_url,
        api_url=fake.api_url,
    )
    try:
        # Baseline: the same calls, bare.
        started = time.perf_counter()
        for n, token in enumerate(tokens):
            await client.create_post(
                AccessToken(token),
                Article(
                    author=f"urn:li:person:sub{n:06d}",
                    commentary="bare",
                    source="https://go.acme.test/r/x",
                    title="t",
                    description="d",
                ),
            )
        bare = time.perf_counter() - started
        fake.posts.clear()

        started = time.perf_counter()
        while await posting.run_posts(sessions, SystemClock(), config, AI(linkedin=client)):
            pass
        worker = time.perf_counter() - started

        sealed = connection.seal(ring, AccessToken(tokens[0]), 1)
        rounds = 2000
        opened_at = time.perf_counter()
        for _ in range(rounds):
            ring.open(sealed, purpose=connection.TOKEN_PURPOSE, bound_to="member:1")
        open_us = (time.perf_counter() - opened_at) / rounds * 1e6

        async with sessions() as session:
            rows = (await session.exec(select(LinkedInPost))).all()
    finally:
        await client.close()
        await fake.close()
        await engine.dispose()
    published = [p.body["author"] for p in fake.posts]
    recorded = sum(1 for r in rows if r.status == "posted" and r.urn)
    ratio = (count / worker) / (count / bare)
    return {
        "posts": count,
        "bare calls/s (baseline)": count / bare,
        "worker posts/s": count / worker,
        "worker ÷ bare": ratio,
        "published": len(published),
        "published twice": len(published) - len(set(published)),
        "recorded with URN": recorded,
        "verdict": verdict(
            float(len(set(published)) == count == recorded and len(published) == count), 1.0
        ),
        "open a sealed token (µs)": open_us,
    }


def main(argv: list[str]) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks linkedin", description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--postgres", action="store_true")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = (
            _postgres_schema_url()
            if options.postgres
            else f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        )
        figures = asyncio.run(_run(options.count, url))
    report("linkedin", figures)
    return figures


def _postgres_schema_url() -> str:
    """A fresh schema in the benchmark database (left behind: it names itself)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    schema = f"bench_linkedin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
