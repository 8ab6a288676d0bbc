"""`GET /metrics`: webhooks, jobs, latency, orders, attention and reconciliation, with values
after real traffic."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import Permanent
from tests.fake_channel import order_json, signed, to_order, webhook
from tests.harness import Hub

from .conftest import ok, place, send

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(hub: Hub) -> Samples:
    response = hub.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_webhooks_jobs_orders_attention_and_reconciliation(hub: Hub) -> None:
    assert hub.fake is not None
    before = scrape(hub)

    place(hub, "A-1", ("SKU-1", 1))
    place(hub, "A-2", ("SKU-1", 1))
    duplicate = webhook("evt-A-1", "order.new", order_json("A-1", ("SKU-1", 1)))
    assert (
        hub.client.post("/webhooks/fake", content=duplicate, headers=signed(duplicate)).json()[
            "status"
        ]
        == "duplicate"
    )
    forged = {**signed(duplicate), "x-fake-signature": "0" * 64}
    assert hub.client.post("/webhooks/fake", content=duplicate, headers=forged).status_code == 401
    hub.fake.failures["accept"] = [Permanent("the channel refused the accept")]
    place(hub, "A-3", ("SKU-1", 1))
    hub.fake.orders["R-1"] = to_order(order_json("R-1", ("SKU-1", 1)))  # its webhook was lost
    run = ok(hub.admin("POST", "/admin/reconcile/fake", json={}), 202)
    hub.drain()
    assert ok(hub.admin("GET", f"/admin/reconcile/runs/{run['run_id']}"))["state"] == "done"
    send(hub, "W-1", ("SKU-1", 1))  # stays queued: the worker has not run since

    after = scrape(hub)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("hub_webhooks_total", channel="fake", outcome="accepted") == 4
    assert grew("hub_webhooks_total", channel="fake", outcome="duplicate") == 1
    assert grew("hub_webhooks_total", channel="fake", outcome="rejected") == 1
    assert ("hub_jobs", frozenset({("kind", "inbox.process"), ("state", "done")})) not in after
    assert value(after, "hub_jobs", kind="inbox.process", state="queued") == 1
    assert value(after, "hub_jobs_queued", kind="inbox.process", priority="10") == 1
    assert value(after, "hub_jobs", kind="order.accept", state="dead") == 1
    assert value(after, "hub_jobs_oldest_due_seconds", kind="inbox.process") >= 0
    assert ("hub_jobs_oldest_due_seconds", frozenset({("kind", "inbox.process")})) in after
    assert grew("hub_jobs_run_total", kind="inbox.process", outcome="ok") == 3
    assert grew("hub_job_latency_seconds_count", kind="inbox.process") == 3
    assert grew("hub_job_seconds_count", kind="fulfilment.route") == 3
    assert value(after, "hub_orders", channel="fake", state="confirmed") == 3
    assert value(after, "hub_orders", channel="fake", state="acknowledged") == 1
    assert value(after, "hub_orders_needing_attention") == 1
    assert grew("hub_reconcile_mismatches_total", channel="fake", kind="missing_order") == 1
    assert value(after, "hub_reconcile_last_run_mismatches", channel="fake") == 1


def test_hub_worker_serves_its_job_counters_and_stops_on_sigterm(
    sqlite_template: Path, tmp_path: Path
) -> None:
    with _worker_with_metrics(sqlite_template, tmp_path) as port:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    assert "# TYPE hub_jobs_run_total counter" in text
    assert "# TYPE hub_job_latency_seconds histogram" in text


def test_hub_worker_metrics_with_a_token_set_answer_only_a_scrape_that_carries_it(
    sqlite_template: Path, tmp_path: Path
) -> None:
    with _worker_with_metrics(sqlite_template, tmp_path, HUB_METRICS_TOKEN="w-token") as port:
        url = f"http://127.0.0.1:{port}/metrics"
        bare = httpx.get(url, timeout=2)
        wrong = httpx.get(url, headers={"authorization": "Bearer w-tokenx"}, timeout=2)
        scraped = httpx.get(url, headers={"authorization": "Bearer w-token"}, timeout=2)
    for refused in (bare, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthenticated"
        assert "hub_" not in refused.text
    assert scraped.status_code == 200
    assert "# TYPE hub_jobs_run_total counter" in scraped.text
    # A worker's own counters only: the database figures are the API's.
    assert "# TYPE hub_orders gauge" not in scraped.text


@contextmanager
def _worker_with_metrics(template: Path, tmp_path: Path, **env_vars: str) -> Iterator[int]:
    """`hub worker --metrics-port` on a free port, up and answering; SIGTERM stops it with 0."""
    database = tmp_path / "hub.db"
    shutil.copy(template, database)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = f"sqlite:///{database}"
    env.update(env_vars)
    worker = subprocess.Popen(
        [sys.executable, "-c", "from hub.cli import main; main()", "worker"]
        + ["--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except httpx.TransportError:
                assert worker.poll() is None, worker.communicate()
                assert time.monotonic() < deadline, "the worker never served its metrics"
                time.sleep(0.1)
        yield port
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
