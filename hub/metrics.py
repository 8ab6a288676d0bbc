"""Prometheus counters kept by the process that saw the event (the API process counts
webhooks, a worker counts its jobs). The hub's figures read from the database at scrape time
live in `hub.admin.metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "hub_webhooks_total",
    "Webhooks received, by channel and outcome (accepted, duplicate, rejected)",
    ["channel", "outcome"],
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
RECONCILE_RUNS = Counter(
    "hub_reconcile_runs_total", "Reconciliation runs finished, by outcome", ["channel", "outcome"]
)
STUCK_ORDERS = Counter(
    "hub_orders_stuck_total", "Orders flagged for staying in one state too long", ["state"]
)
