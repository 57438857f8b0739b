"""Prometheus metrics, on a registry of our own so tests and processes don't collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "flywheel_http_requests_total",
    "HTTP requests by route and status",
    ("route", "status"),
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "flywheel_ack_seconds",
    "Time to acknowledge a platform request",
    ("platform",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "flywheel_outbox_rows", "Outbox rows by status", ("status",), registry=REGISTRY
)
OUTBOX_SENT = Counter(
    "flywheel_outbox_sent_total", "Messages sent", ("platform",), registry=REGISTRY
)
OUTBOX_FAILED = Counter(
    "flywheel_outbox_failed_total", "Messages given up on", ("platform",), registry=REGISTRY
)
OUTBOX_RATE_LIMITED = Counter(
    "flywheel_outbox_rate_limited_total",
    "429 answers from platforms",
    ("platform",),
    registry=REGISTRY,
)
OUTBOX_SEND_SECONDS = Histogram(
    "flywheel_outbox_send_seconds", "Platform API call time", ("platform",), registry=REGISTRY
)
LIMITER_WAIT = Histogram(
    "flywheel_limiter_wait_seconds",
    "Time a send waited for its slot under the platform's limits, by limit",
    ("limit",),
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
    registry=REGISTRY,
)
LIMITER_DEFERRED = Counter(
    "flywheel_limiter_deferred_total",
    "Sends handed back to the outbox because their slot was too far off, by limit",
    ("limit",),
    registry=REGISTRY,
)
LIMITER_MISSED = Counter(
    "flywheel_limiter_missed_total",
    "Send slots missed because the sender woke too late (a starved CPU), each handed back "
    "for a new one, by limit",
    ("limit",),
    registry=REGISTRY,
)
LIMITER_UNAVAILABLE = Counter(
    "flywheel_limiter_unavailable_total",
    "Sends not made because the store of the shared limits could not be reached",
    ("store",),
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "flywheel_outbox_backlog",
    "Unsent outbox rows (pending or sending) by time since they were queued",
    ("age",),
    registry=REGISTRY,
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "flywheel_outbox_oldest_unsent_seconds",
    "Seconds since the oldest unsent outbox row was queued (0 when none)",
    registry=REGISTRY,
)
