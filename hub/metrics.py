"""Prometheus metrics: event counters kept by the process that saw the event, and the
database's figures read at scrape time.

Counters live in memory, so each process reports its own (the API process counts webhooks, a
worker counts its jobs). What is true of the whole hub (orders by state, jobs by state, how
overdue the queue is, what the last reconciliation found) is read from the database on every
scrape, so whichever process is scraped tells the same truth.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.db import Database
from hub.jobs import queue
from hub.orders import repository as orders_repo
from hub.reconcile import repository as reconcile_repo

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


class DatabaseCollector(Collector):
    """Gauges read from the hub's database at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily(
            "hub_orders", "Orders by channel and state", labels=["channel", "state"]
        )
        jobs = GaugeMetricFamily("hub_jobs", "Jobs by kind and state", labels=["kind", "state"])
        overdue = GaugeMetricFamily(
            "hub_jobs_oldest_due_seconds",
            "How long the longest-waiting due job of each kind has waited",
            labels=["kind"],
        )
        mismatches = GaugeMetricFamily(
            "hub_reconcile_last_run_mismatches",
            "Mismatches the latest finished reconciliation run of each channel found",
            labels=["channel"],
        )
        with self.db.reader() as session:
            for channel, state, n in orders_repo.counts_by_channel_and_status(session):
                orders.add_metric([channel, state], n)
            for kind, state, n in queue.counts_by_kind_and_state(session):
                jobs.add_metric([kind, state], n)
            for kind, seconds in queue.oldest_due_by_kind(session):
                overdue.add_metric([kind], seconds)
            for channel, n in reconcile_repo.last_mismatch_counts(session):
                mismatches.add_metric([channel], n)
            attention = orders_repo.attention_count(session)
        yield orders
        yield jobs
        yield overdue
        yield mismatches
        yield GaugeMetricFamily(
            "hub_orders_needing_attention", "Orders flagged for a person", value=attention
        )


def render(db: Database) -> bytes:
    """The Prometheus text exposition: this process's counters, then the database's gauges."""
    figures = CollectorRegistry(auto_describe=False)
    figures.register(DatabaseCollector(db))
    return generate_latest(REGISTRY) + generate_latest(figures)
