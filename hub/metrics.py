"""Prometheus metrics. Counters that live in the database (orders by state, jobs by state) are
read at scrape time by `hub.admin.metrics`; these are the in-process event counters."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "hub_webhooks_total", "Webhooks received, by channel and outcome", ["channel", "outcome"]
)
JOBS_RUN = Counter("hub_jobs_run_total", "Job attempts, by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram(
    "hub_job_seconds",
    "Time a job attempt took, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOB_LATENCY = Histogram(
    "hub_job_latency_seconds",
    "Time from a job being due to its attempt starting, by kind",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECONCILE_MISMATCHES = Counter(
    "hub_reconcile_mismatches_total", "Drift found by reconciliation", ["channel", "kind"]
)
