"""Prometheus metrics the listener updates (served at /metrics by the web app)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MENTIONS_INGESTED = Counter("openear_mentions_ingested_total", "Mentions stored, per source", ["source"])
DUPLICATES_SKIPPED = Counter("openear_duplicates_skipped_total", "Mentions already stored, per source", ["source"])
POLL_ERRORS = Counter("openear_poll_errors_total", "Failed polls, per source and error type", ["source", "error"])
CLASSIFY_SECONDS = Histogram(
    "openear_classification_seconds", "Time to classify one poll's batch",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
