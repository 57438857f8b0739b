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
