"""The hub's figures for Prometheus, read from the database at each scrape, after this
process's own counters (`hub.metrics`).

Counters live in memory, so each process reports its own. What is true of the whole hub (orders
by state, open jobs by state, queue depth by kind and priority, how overdue the queue is, what
the last reconciliation found) is read from the database on every scrape, so whichever process
is scraped tells the same truth. The job figures read only open jobs (queued, running, dead)
through indexes, so a scrape costs the same however many done jobs are kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.db import Database
from hub.jobs import queue
from hub.jobs.models import JobState
from hub.orders import repository as orders_repo
from hub.reconcile import repository as reconcile_repo


class DatabaseCollector(Collector):
    """Gauges read from the hub's database at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily(
            "hub_orders", "Orders by channel and state", labels=["channel", "state"]
        )
        jobs = GaugeMetricFamily(
            "hub_jobs",
            "Open jobs (queued, running, dead) by kind and state; done ones are counted by "
            "hub_jobs_run_total",
            labels=["kind", "state"],
        )
        depth = GaugeMetricFamily(
            "hub_jobs_queued",
            "Queue depth: jobs waiting to run, by kind and priority (lower runs sooner)",
            labels=["kind", "priority"],
        )
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
            by_state: dict[tuple[str, str], int] = {}
            for kind, state, priority, n in queue.open_counts(session):
                by_state[(kind, state)] = by_state.get((kind, state), 0) + n
                if state == JobState.QUEUED:
                    depth.add_metric([kind, str(priority)], n)
            for (kind, state), n in sorted(by_state.items()):
                jobs.add_metric([kind, state], n)
            for kind, seconds in queue.oldest_due_by_kind(session):
                overdue.add_metric([kind], seconds)
            for channel, n in reconcile_repo.last_mismatch_counts(session):
                mismatches.add_metric([channel], n)
            attention = orders_repo.attention_count(session)
        yield orders
        yield jobs
        yield depth
        yield overdue
        yield mismatches
        yield GaugeMetricFamily(
            "hub_orders_needing_attention", "Orders flagged for a person", value=attention
        )


def render_process() -> bytes:
    """The Prometheus text exposition of this process's counters alone."""
    return generate_latest(REGISTRY)


def render(db: Database) -> bytes:
    """The Prometheus text exposition: this process's counters, then the database's gauges."""
    figures = CollectorRegistry(auto_describe=False)
    figures.register(DatabaseCollector(db))
    return generate_latest(REGISTRY) + generate_latest(figures)
