"""Expert matching: a labelled set of experts and requests, the availability rules, the
reasons shown to experts, and the per-workspace index cache on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from handlers.routing.matching import (
    SEMANTIC_REASON,
    Candidate,
    ExpertDoc,
    ExpertIndex,
    ExpertLoad,
)
from handlers.routing.ranking import IndexCache, load_docs, rank_experts
from handlers.routing.words import terms
from storage.db import SessionFactory, create_engine, session_factory, transaction
from storage.models import ExpertProfile, Member, Workspace
from testing.fakes.clock import FrozenClock

TODAY = date(2026, 11, 23)

# user id: (name, topics, bio)
PROFILES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "UALICE": (
        "Alice",
        ("kubernetes", "helm", "platform engineering"),
        "I run the platform team: forty EKS clusters, and zero-downtime rollouts are my obsession.",
    ),
    "UBOB": (
        "Bob",
        ("postgresql", "database migrations", "oracle"),
        "DBA for ten years; moved our billing system from Oracle to PostgreSQL.",
    ),
    "UCAROL": (
        "Carol",
        ("security", "SOC 2", "compliance", "threat modeling"),
        "Security lead. I ran our SOC 2 Type II audit and answer security questionnaires.",
    ),
    "UDAN": (
        "Dan",
        ("machine learning", "recommendation systems", "python"),
        "I build the ranking models behind the storefront.",
    ),
    "UERIN": (
        "Erin",
        ("pricing", "sales enablement", "negotiation"),
        "I coach account executives through procurement and discount conversations.",
    ),
    "UFRANK": (
        "Frank",
        ("frontend", "react", "accessibility"),
        "Fast, accessible web apps; WCAG nerd.",
    ),
    "UGRACE": (
        "Grace",
        ("observability", "prometheus", "incident response"),
        "SRE on the payments team; I write most of our postmortems.",
    ),
    "UHEIDI": (
        "Heidi",
        ("data engineering", "kafka", "streaming"),
        "I build the pipelines that move events from Kafka into the warehouse.",
    ),
    "UIVAN": (
        "Ivan",
        ("terraform", "aws", "cost optimization"),
        "FinOps: cut our AWS bill by a third with reserved instances and rightsizing.",
    ),
    "UJUDY": ("Judy", ("mobile", "ios", "swift"), "I ship the iOS app every two weeks."),
}
PUBLISHED = {
    "UALICE": ("Zero-downtime upgrades\nHow we upgrade our clusters without dropping a request.",),
    "UHEIDI": ("Exactly-once delivery with Kafka transactions",),
}
MEMBER_IDS = {user_id: i for i, user_id in enumerate(PROFILES, start=1)}

# Requests, each with the expert who should be asked first.
LABELLED = [
    ("How do we upgrade Kubernetes without downtime?", "UALICE"),
    ("Migrating from Oracle to Postgres: lessons learned", "UBOB"),
    ("What does a SOC 2 audit involve for a startup?", "UCAROL"),
    ("How our recommendation models rank products", "UDAN"),
    ("Handling discount requests from procurement teams", "UERIN"),
    ("Making our React app accessible to screen reader users", "UFRANK"),
    ("What we learned from our last incident postmortem", "UGRACE"),
    ("Streaming events with Kafka into the data warehouse", "UHEIDI"),
    ("Reducing our AWS costs before renewal", "UIVAN"),
    ("Releasing iOS apps faster", "UJUDY"),
]
K8S = LABELLED[0][0]


def doc(user_id: str, *, member_id: int | None = None, **changes: Any) -> ExpertDoc:
    name, topics, bio = PROFILES.get(user_id, (user_id.title(), (), ""))
    base = ExpertDoc(
        member_id=member_id or MEMBER_IDS[user_id],
        user_id=user_id,
        name=name,
        topics=topics,
        bio=bio,
        published=PUBLISHED.get(user_id, ()),
        capacity=2,
        snoozed_until=None,
    )
    return dataclasses.replace(base, **changes)


def team(*extra: ExpertDoc, **changes: dict[str, Any]) -> ExpertIndex:
    docs = [doc(user_id, **changes.get(user_id, {})) for user_id in PROFILES]
    return ExpertIndex.build([*docs, *extra])


INDEX = team()


def rank(index: ExpertIndex, query: str, **options: Any) -> list[Candidate]:
    return index.rank(query, **{"loads": {}, "today": TODAY, "weekly_cap": 3, **options})


def users(candidates: Sequence[Candidate]) -> list[str]:
    return [c.user_id for c in candidates]


# -- relevance ---------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), LABELLED)
def test_the_right_expert_ranks_first(query: str, expected: str) -> None:
    found = rank(INDEX, query)
    assert found and found[0].user_id == expected
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


def test_nobody_is_asked_about_something_nobody_knows() -> None:
    assert rank(INDEX, "Where is the best pizza near the office?") == []
    assert rank(INDEX, "what do we need, and how?") == []  # nothing but stopwords
    assert rank(INDEX, "   ") == []
    assert rank(ExpertIndex.build([]), K8S) == []


def test_a_weak_coincidence_is_not_relevance() -> None:
    # Kubernetes is Alice's field; Ken mentions deploying there, Quinn only shares a word.
    ken = doc("UKEN", member_id=11, topics=("java",), bio="I sometimes deploy to Kubernetes.")
    quinn = doc(
        "UQUINN",
        member_id=12,
        topics=("cooking",),
        bio="Chef turned product manager. I run the cooking club, organise the summer party, "
        "and will happily show anyone how to upgrade their knife skills, sharpen a blade, or "
        "bake sourdough bread at home on weekends.",
    )
    found = rank(team(ken, quinn), K8S)
    assert users(found) == ["UALICE", "UKEN"]  # "upgrade" in a long bio: far below the best
    assert found[1].reasons == ("your bio mentions Kubernetes",)


def test_words_are_normalised() -> None:
    assert terms("Kubernetes upgrades, K8s!") == terms("kubernetes upgrade k8s")
    assert terms("Postgres databases") == terms("PostgreSQL database")
    assert terms("zero-downtime") == terms("Zero Downtime")
    assert terms("C++ and node.js") == ["c++", "node.js"]
    assert terms("How do we write a blog post about it?") == []


def test_a_multi_word_topic_counts_as_a_phrase() -> None:
    phrase = doc("UPAT", member_id=11, topics=("zero downtime",), bio="")
    words = doc("UQUIN", member_id=12, topics=("downtime", "zero trust"), bio="")
    found = rank(ExpertIndex.build([words, phrase]), "Zero-downtime database deploys")
    assert users(found) == ["UPAT", "UQUIN"]
    assert found[0].reasons == ("you listed zero downtime",)


# -- who may be asked --------------------------------------------------------------------


def test_the_requester_is_never_their_own_expert() -> None:
    assert "UALICE" not in users(rank(INDEX, K8S, exclude={MEMBER_IDS["UALICE"]}))


@pytest.mark.parametrize(
    ("snoozed_until", "asked"),
    [(TODAY - timedelta(days=1), True), (TODAY, False), (TODAY + timedelta(days=5), False)],
)
def test_a_snoozed_expert_is_skipped_until_the_snooze_ends(
    snoozed_until: date, asked: bool
) -> None:
    index = team(UALICE={"snoozed_until": snoozed_until})
    assert ("UALICE" in users(rank(index, K8S))) is asked


@pytest.mark.parametrize(
    ("capacity", "open_assignments", "asked"),
    [(2, 0, True), (2, 1, True), (2, 2, False), (2, 5, False), (0, 0, False)],
)
def test_an_expert_at_capacity_is_skipped(
    capacity: int, open_assignments: int, asked: bool
) -> None:
    index = team(UALICE={"capacity": capacity})
    loads = {MEMBER_IDS["UALICE"]: ExpertLoad(open_assignments=open_assignments)}
    assert ("UALICE" in users(rank(index, K8S, loads=loads))) is asked


@pytest.mark.parametrize(("pings", "cap", "asked"), [(2, 3, True), (3, 3, False), (3, 5, True)])
def test_the_weekly_ping_cap_holds(pings: int, cap: int, asked: bool) -> None:
    loads = {MEMBER_IDS["UALICE"]: ExpertLoad(pings_this_week=pings)}
    assert ("UALICE" in users(rank(INDEX, K8S, loads=loads, weekly_cap=cap))) is asked


def test_limit_keeps_the_best() -> None:
    query = "Kafka, Kubernetes, PostgreSQL and AWS costs"
    everyone = rank(INDEX, query)
    assert len(everyone) == 4
    assert rank(INDEX, query, limit=2) == everyone[:2]
    assert rank(INDEX, query, limit=0) == []


# -- adjustments -------------------------------------------------------------------------


def twins(n: int) -> list[ExpertDoc]:
    return [
        doc(f"UTWIN{i}", member_id=100 + i, topics=("kafka",), bio="Kafka operator.")
        for i in range(n)
    ]


def test_responsiveness_breaks_ties_with_a_neutral_prior_for_newcomers() -> None:
    responsive, newcomer, silent = twins(3)
    loads = {
        responsive.member_id: ExpertLoad(answered=6),
        silent.member_id: ExpertLoad(ignored=6),
    }
    found = rank(ExpertIndex.build([silent, newcomer, responsive]), "Kafka", loads=loads)
    assert users(found) == ["UTWIN0", "UTWIN1", "UTWIN2"]


def test_spare_capacity_breaks_ties() -> None:
    busy, free = twins(2)
    loads = {busy.member_id: ExpertLoad(open_assignments=1)}
    found = rank(ExpertIndex.build([busy, free]), "Kafka", loads=loads)
    assert users(found) == ["UTWIN1", "UTWIN0"]


def test_adjustments_do_not_overturn_a_clearly_better_match() -> None:
    ken = doc("UKEN", member_id=11, topics=("java",), bio="I sometimes deploy to Kubernetes.")
    loads = {
        MEMBER_IDS["UALICE"]: ExpertLoad(open_assignments=1, ignored=10),
        ken.member_id: ExpertLoad(answered=10),
    }
    found = users(rank(team(ken), K8S, loads=loads))
    assert found.index("UALICE") < found.index("UKEN")


# -- reasons -----------------------------------------------------------------------------


def test_reasons_name_the_topics_and_titles_that_matched() -> None:
    [alice] = rank(INDEX, K8S, limit=1)
    assert alice.reasons == ("you listed kubernetes", "you wrote 'Zero-downtime upgrades'")


def test_reasons_quote_the_bio_as_written() -> None:
    [erin] = rank(INDEX, LABELLED[4][0], limit=1)
    assert erin.reasons == ("your bio mentions procurement and discount",)
    [bob] = rank(INDEX, "Oracle to PostgreSQL billing migration", limit=1)
    assert bob.reasons == (
        "you listed postgresql, database migrations and oracle",  # in the order listed
        "your bio mentions billing",
    )


def test_semantic_similarity_brings_in_an_expert_who_shares_no_words() -> None:
    sam = doc("USAM", member_id=11, topics=("container orchestration",), bio="Clusters.")
    index = team(sam)
    assert "USAM" not in users(rank(index, K8S))
    close = {sam.member_id: 0.8, MEMBER_IDS["UALICE"]: 0.9}
    found = rank(index, K8S, semantic=close)
    assert users(found)[:2] == ["UALICE", "USAM"]
    assert found[1].reasons == (SEMANTIC_REASON,)
    # Below the floor, embeddings say "unrelated": no one is added.
    assert "USAM" not in users(rank(index, K8S, semantic={sam.member_id: 0.25}))


def test_semantic_similarity_reorders_lexical_near_ties() -> None:
    first, second = twins(2)
    index = ExpertIndex.build([first, second])
    assert users(rank(index, "Kafka")) == ["UTWIN0", "UTWIN1"]
    semantic = {first.member_id: 0.4, second.member_id: 0.9}
    assert users(rank(index, "Kafka", semantic=semantic)) == ["UTWIN1", "UTWIN0"]


# -- from the database, cached per workspace ---------------------------------------------


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


async def seed(
    sessions: SessionFactory,
    clock: FrozenClock,
    workspace: str = "acme",
    profiles: dict[str, tuple[str, tuple[str, ...], str]] = PROFILES,
) -> tuple[int, dict[str, int]]:
    """A workspace with a member and an expert profile per entry; its id and member ids."""
    now = clock.now()
    async with transaction(sessions) as session:
        space = Workspace(platform="console", external_id=workspace, name=workspace, created_at=now)
        session.add(space)
        await session.flush()
        assert space.id is not None
        members = {}
        for user_id, (name, topics, bio) in profiles.items():
            member = Member(
                workspace_id=space.id, user_id=user_id, name=name, created_at=now, updated_at=now
            )
            session.add(member)
            await session.flush()
            assert member.id is not None
            members[user_id] = member.id
            session.add(
                ExpertProfile(
                    workspace_id=space.id,
                    member_id=member.id,
                    topics=list(topics),
                    bio=bio,
                    capacity=2,
                    created_at=now,
                    updated_at=now,
                )
            )
        return space.id, members


async def ranked(
    sessions: SessionFactory, workspace_id: int, query: str, cache: IndexCache, **options: Any
) -> list[Candidate]:
    async with transaction(sessions) as session:
        return await rank_experts(
            session,
            workspace_id,
            query,
            **{"loads": {}, "today": TODAY, "weekly_cap": 3, "cache": cache, **options},
        )


async def edit_profile(sessions: SessionFactory, member_id: int, **values: Any) -> None:
    """Change a profile without touching updated_at, as two edits within one tick would."""
    async with transaction(sessions) as session:
        profile = (
            await session.exec(select(ExpertProfile).where(ExpertProfile.member_id == member_id))
        ).one()
        for key, value in values.items():
            setattr(profile, key, value)
        session.add(profile)


async def test_load_docs_reads_every_profile_of_the_workspace(
    sessions: SessionFactory, clock: FrozenClock
) -> None:
    workspace_id, members = await seed(sessions, clock)
    other_id, _ = await seed(sessions, clock, "globex", {"UZED": ("Zed", ("kafka",), "")})
    async with transaction(sessions) as session:
        bot = Member(
            workspace_id=workspace_id,
            user_id="UBOT",
            name="bot",
            is_bot=True,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(bot)
        await session.flush()
        assert bot.id is not None
        session.add(
            ExpertProfile(
                workspace_id=workspace_id,
                member_id=bot.id,
                topics=["kafka"],
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    async with transaction(sessions) as session:
        docs = await load_docs(session, workspace_id)
        others = await load_docs(session, other_id)
    assert [d.user_id for d in docs] == list(PROFILES)
    alice = docs[0]
    assert alice == ExpertDoc(
        member_id=members["UALICE"],
        user_id="UALICE",
        name="Alice",
        topics=PROFILES["UALICE"][1],
        bio=PROFILES["UALICE"][2],
        published=(),
        capacity=2,
        snoozed_until=None,
    )
    assert [d.user_id for d in others] == ["UZED"]


async def test_rank_experts_ranks_the_workspace_from_the_database(
    sessions: SessionFactory, clock: FrozenClock
) -> None:
    workspace_id, members = await seed(sessions, clock)
    await seed(sessions, clock, "globex", {"UZED": ("Zed", ("kubernetes",), "Kubernetes!")})
    cache = IndexCache()
    found = await ranked(sessions, workspace_id, K8S, cache, exclude={members["UBOB"]})
    assert users(found) == ["UALICE"]  # never the other workspace's Kubernetes expert
    assert found[0].member_id == members["UALICE"]
    assert found[0].reasons == ("you listed kubernetes", "your bio mentions zero-downtime")
    for query, expected in LABELLED:
        assert users(await ranked(sessions, workspace_id, query, cache))[0] == expected


async def test_the_index_is_reused_until_a_profile_changes(
    sessions: SessionFactory, clock: FrozenClock
) -> None:
    workspace_id, members = await seed(sessions, clock)
    cache = IndexCache()
    await ranked(sessions, workspace_id, K8S, cache)
    await ranked(sessions, workspace_id, "Kafka streaming", cache)
    assert cache.builds == 1

    # Edits within the same clock tick still count: Bob learns Kubernetes.
    await edit_profile(sessions, members["UBOB"], topics=["postgresql", "kubernetes"])
    assert "UBOB" in users(await ranked(sessions, workspace_id, K8S, cache))
    assert cache.builds == 2
    await edit_profile(sessions, members["UBOB"], snoozed_until=TODAY)
    assert "UBOB" not in users(await ranked(sessions, workspace_id, K8S, cache))
    await edit_profile(sessions, members["UBOB"], capacity=3)
    await ranked(sessions, workspace_id, K8S, cache)
    assert cache.builds == 4

    # A new expert joins.
    clock.advance(minutes=1)
    await seed(sessions, clock, "acme-2")  # another workspace: no rebuild of this one
    await ranked(sessions, workspace_id, K8S, cache)
    assert cache.builds == 4
    async with transaction(sessions) as session:
        member = Member(
            workspace_id=workspace_id,
            user_id="UKIM",
            name="Kim",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add(
            ExpertProfile(
                workspace_id=workspace_id,
                member_id=member.id,
                topics=["kubernetes", "helm"],
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    assert "UKIM" in users(await ranked(sessions, workspace_id, K8S, cache))
    assert cache.builds == 5


async def test_an_edit_earlier_in_the_same_unit_of_work_is_seen(
    sessions: SessionFactory, clock: FrozenClock
) -> None:
    workspace_id, members = await seed(sessions, clock)
    cache = IndexCache()
    options: dict[str, Any] = {"loads": {}, "today": TODAY, "weekly_cap": 3, "cache": cache}
    async with transaction(sessions) as session:
        assert "UBOB" not in users(await rank_experts(session, workspace_id, K8S, **options))
        query = select(ExpertProfile).where(ExpertProfile.member_id == members["UBOB"])
        profile = (await session.exec(query)).one()
        profile.topics = ["kubernetes"]
        session.add(profile)  # not flushed yet
        assert "UBOB" in users(await rank_experts(session, workspace_id, K8S, **options))
