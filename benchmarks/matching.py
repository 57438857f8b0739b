"""Expert matching: rank 10,000 expert profiles for one request.

Figure: the median time of `ExpertIndex.rank` (lexical, index prebuilt, reasons included)
over many different requests. Baseline, in the same run: a plain NumPy dot product of one
query vector with precomputed dense vectors of the same profiles (384-dim float32) — the
least work any ranking over every profile can do. Targets: median under 20 ms and within
5× of that floor. The index build time is reported too; it is paid once per profile change.

Profiles are synthetic but shaped like real ones: 1–8 topics from a vocabulary of a few
hundred terms (single and multi-word), bios of 20–60 words mixing those terms with
ordinary prose, and a load history for a fifth of the experts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np

from benchmarks import RESULTS, Figures, report, verdict
from handlers.routing.matching import ExpertDoc, ExpertIndex, ExpertLoad

TARGET_MS = 20.0
TARGET_RATIO = 5.0
DIMENSIONS = 384
TODAY = date(2026, 11, 23)

TERMS = """kubernetes; helm; terraform; ansible; docker; containers; service mesh; istio; envoy;
linkerd; aws; azure; google cloud; gcp; lambda; serverless; ec2; s3; cloudfront; cdn; dns;
load balancing; nginx; haproxy; api gateway; graphql; rest apis; grpc; protobuf; openapi;
webhooks; oauth; openid connect; saml; single sign-on; identity management; zero trust;
soc 2; iso 27001; gdpr; hipaa; pci dss; penetration testing; threat modeling; vulnerability
management; secrets management; vault; encryption; key management; incident response;
postmortems; on-call; observability; prometheus; grafana; opentelemetry; tracing; logging;
elasticsearch; opensearch; kibana; datadog; alerting; slos; error budgets; chaos engineering;
capacity planning; performance tuning; load testing; caching; redis; memcached; postgresql;
mysql; oracle; sql server; mongodb; cassandra; dynamodb; database migrations; schema design;
query optimization; replication; sharding; backups; disaster recovery; high availability;
zero downtime; blue green deployments; canary releases; feature flags; ci/cd; github actions;
jenkins; gitlab; argo cd; gitops; release engineering; monorepos; build systems; bazel;
kafka; rabbitmq; event sourcing; cqrs; stream processing; flink; spark; airflow; dbt;
data warehouse; snowflake; bigquery; redshift; data lakes; data governance; data quality;
etl pipelines; data engineering; analytics; dashboards; business intelligence; looker;
tableau; machine learning; deep learning; recommendation systems; search relevance;
information retrieval; embeddings; large language models; prompt engineering; rag;
fine tuning; mlops; model serving; computer vision; speech recognition; nlp; forecasting;
anomaly detection; fraud detection; a/b testing; experimentation; product analytics;
python; java; kotlin; scala; go; rust; typescript; javascript; node.js; react; vue;
angular; svelte; next.js; css; design systems; accessibility; web performance; seo;
mobile; ios; swift; android; react native; flutter; offline sync; push notifications;
payments; billing; subscriptions; invoicing; tax compliance; pricing; packaging;
discounting; procurement; negotiation; sales enablement; solution selling; demos;
proof of concept; rfp responses; security questionnaires; customer onboarding;
implementation; professional services; customer success; churn reduction; renewals;
account management; partnerships; channel sales; marketplace listings; developer relations;
technical writing; documentation; api design; sdk design; developer experience;
platform engineering; internal tooling; cost optimization; finops; reserved instances;
rightsizing; multi tenancy; migrations to cloud; mainframe modernization; microservices;
monolith decomposition; domain driven design; event driven architecture; workflow engines;
temporal; scheduling; rate limiting; queues; idempotency; distributed systems; consensus;
raft; networking; vpn; firewalls; edge computing; iot; embedded systems; firmware;
robotics; supply chain; logistics; retail; healthcare; fintech; insurance; telecom;
energy; manufacturing; public sector; education technology; localization; translation;
content strategy; brand; social media; community management; events; webinars;
case studies; customer references; roi analysis; total cost of ownership; compliance
automation; audit readiness; risk management; vendor management; legal review;
contract negotiation; privacy engineering; data residency; sovereignty; hiring;
interviewing; engineering management; career ladders; mentoring; onboarding; agile;
scrum; okrs; roadmapping; product management; user research; ux writing""".replace("\n", " ")
VOCABULARY = [term.strip() for term in TERMS.split(";") if term.strip()]

PROSE = """i have spent the last years working with teams across the company and customers on
projects that matter to them most days you will find me helping colleagues debug hard
problems reviewing designs writing guides and running workshops before that i worked at a
startup and a large bank where i learned to ship carefully happy to talk about anything
related to my field especially when it helps a deal or a launch move forward i enjoy
mentoring new hires and explaining complex systems in simple words outside work i cycle
cook and read history""".split()
ROLES = [
    "engineer",
    "architect",
    "consultant",
    "presales engineer",
    "SRE",
    "manager",
    "analyst",
    "designer",
    "product manager",
    "account executive",
    "data scientist",
    "researcher",
]
TEMPLATES = [
    "How do we {a} with {b}?",
    "Best practices for {a} in regulated industries",
    "What changed in {a} this year and why it matters for {b}",
    "A customer asks how our {a} compares with {b}",
    "Lessons learned from moving {a} to {b}",
    "Explain {a} to a non-technical buyer",
    "{a}, {b} and {c}: a reference architecture",
    "Why {a} fails at scale and how {b} helps",
    "Can someone write about {a} for our next webinar?",
    "Checklist: {a} before a {b} audit",
]


def profiles(count: int, rng: random.Random) -> list[ExpertDoc]:
    """`count` expert profiles with realistic topic and bio shapes."""
    docs = []
    for i in range(count):
        topics = tuple(rng.sample(VOCABULARY, rng.randint(1, 8)))
        words: list[str] = []
        target = rng.randint(20, 60)
        words += f"{rng.choice(ROLES)} working on {topics[0]}.".split()
        while len(words) < target:
            if rng.random() < 0.2:
                words += rng.choice(VOCABULARY if rng.random() < 0.5 else topics).split()
            else:
                words.append(rng.choice(PROSE))
        snoozed = TODAY + timedelta(days=rng.randint(1, 30)) if rng.random() < 0.05 else None
        docs.append(
            ExpertDoc(
                member_id=i + 1,
                user_id=f"U{i + 1:06d}",
                name=f"Expert {i + 1}",
                topics=topics,
                bio=" ".join(words[:target]).capitalize() + ".",
                published=(),
                capacity=rng.choice((0, 1, 2, 2, 2, 3, 5)),
                snoozed_until=snoozed,
            )
        )
    return docs


def requests(count: int, rng: random.Random) -> list[str]:
    return [
        rng.choice(TEMPLATES).format(
            a=rng.choice(VOCABULARY), b=rng.choice(VOCABULARY), c=rng.choice(VOCABULARY)
        )
        for _ in range(count)
    ]


def loads(docs: list[ExpertDoc], rng: random.Random) -> dict[int, ExpertLoad]:
    return {
        doc.member_id: ExpertLoad(
            open_assignments=rng.randint(0, 2),
            pings_this_week=rng.randint(0, 3),
            answered=rng.randint(0, 10),
            ignored=rng.randint(0, 10),
        )
        for doc in rng.sample(docs, len(docs) // 5)
    }


def measure(count: int, queries: int, rounds: int, seed: int) -> Figures:
    rng = random.Random(seed)
    docs = profiles(count, rng)
    questions = requests(queries, rng)
    history = loads(docs, rng)

    started = time.perf_counter()
    index = ExpertIndex.build(docs)
    build_s = time.perf_counter() - started

    # The floor: dense vectors of the same profiles, precomputed, one dot product per query.
    matrix = np.random.default_rng(seed).standard_normal((count, DIMENSIONS), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vectors = np.random.default_rng(seed + 1).standard_normal(
        (queries, DIMENSIONS), dtype=np.float32
    )

    def rank(i: int) -> int:
        found = index.rank(
            questions[i],
            loads=history,
            today=TODAY,
            weekly_cap=3,
            exclude=(docs[i % count].member_id,),
            limit=10,
        )
        return len(found)

    def dot(i: int) -> int:
        return int((matrix @ vectors[i]).shape[0])

    # Each round times every request on one side, then on the other: each side runs warm
    # (neither pays for the other evicting its data from the CPU caches), and alternating
    # rounds share out whatever else the machine is doing between them.
    rank_ms: list[float] = []
    dot_ms: list[float] = []
    found: list[int] = []
    for _ in range(rounds):
        times, results = _timed(rank, queries)
        rank_ms += times
        found += results
        dot_ms += _timed(dot, queries)[0]

    rank_median = statistics.median(rank_ms)
    dot_median = statistics.median(dot_ms)
    ratio = rank_median / dot_median
    return {
        "profiles": count,
        "requests (distinct)": queries,
        "samples": len(rank_ms),
        "index build (s)": round(build_s, 3),
        "lexical rank median (ms)": round(rank_median, 3),
        "lexical rank p90 (ms)": round(sorted(rank_ms)[int(0.9 * len(rank_ms))], 3),
        f"NumPy dot floor median (ms, {DIMENSIONS}-dim float32)": round(dot_median, 3),
        "rank / floor": round(ratio, 2),
        "target median < 20 ms": verdict(rank_median, TARGET_MS, at_most=True),
        "target ≤ 5× floor": verdict(ratio, TARGET_RATIO, at_most=True),
        "candidates returned (mean)": round(statistics.fmean(found), 2),
    }


def _timed(work: Callable[[int], int], queries: int) -> tuple[list[float], list[int]]:
    """Milliseconds per request, after one untimed pass to warm up."""
    for i in range(queries):
        work(i)
    times, results = [], []
    for i in range(queries):
        started = time.perf_counter()
        results.append(work(i))
        times.append((time.perf_counter() - started) * 1000)
    return times, results


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.matching", description=__doc__)
    parser.add_argument("--profiles", type=int, default=10_000, help="expert profiles (10,000)")
    parser.add_argument("--queries", type=int, default=100, help="distinct requests (100)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over them (5)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"matching: {args.profiles:,} profiles, {args.queries} requests × {args.rounds}")
    figures = measure(args.profiles, args.queries, args.rounds, args.seed)
    path = report("matching", figures)
    # The latest run under a fixed name too, for the closing note and for comparisons.
    (RESULTS / "matching.json").write_text(path.read_text())
    print(f"(and {(RESULTS / 'matching.json').relative_to(RESULTS.parent.parent)})")
    return figures


if __name__ == "__main__":
    main()
