"""Webhook ingest: signed Depop `v1:order.new` webhooks accepted per second, with p50/p99
latency, through the real hub app under uvicorn on loopback, on SQLite and on Postgres.

Beside it, in the same run, a bare endpoint on the same server stack and database that only
inserts the same raw row (no signature check, no dedupe, no job): the limit; and a hello-world
endpoint on the same stack that touches no database: the ceiling of the server itself. The
figure that matters is hub / bare throughput; the target is at least 0.8.

Each server runs in a subprocess of its own (`python -m bench.ingest --serve ...`) so the load
generator does not share its interpreter; both are warmed up, then rounds alternate hub and
bare so that a noisy machine hurts both alike. Throughput and latency are the median round's;
the ratio is the median of the rounds' back-to-back ratios.

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which a scratch
database is created and dropped. Without Postgres only SQLite runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from bench.support import postgres_database

SECRET = "bench-depop-webhook-secret"
API_KEY = "bench-depop-api-key"
REQUESTS = 1000
WARMUP = 200
CONCURRENCY = 16
ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent


def _order(n: int) -> dict[str, object]:
    """A Depop order as in seeds/depop-seller-api.txt, numbered `n`."""
    return {
        "seller_id": 123456,
        "purchase_id": str(1_000_000 + n),
        "status": "SHIPPING_PENDING",
        "currency": "GBP",
        "buyer_pays_amount": "50.99",
        "seller_receives_amount": "45.99",
        "buyer_shipping_price": "5.00",
        "buyer_tax_amount": "3.24",
        "buyer_address": {
            "name": "John Doe",
            "address": "123 Main St",
            "address2": "Apt 1",
            "city": "London",
            "postal_code": "EC1V 4PW",
            "state": "Greater London",
            "country_code": "GB",
        },
        "line_items": [
            {
                "purchase_item_id": 2385551 + n,
                "sku": "ABC-12345-S-BL",
                "product_id": 7021251,
                "slug": "vintage-nike-t-shirt-7021251",
                "parcel_id": str(uuid.uuid4()),
                "description": "Vintage Nike T-Shirt in excellent condition.",
                "original_price": "29.99",
                "sold_price": "25.99",
                "sold_via_offers": False,
                "image_url": "https://media-photos-staging.depop.com/b0/18220/P0.jpg",
            }
        ],
        "seller_fee_breakdown": [
            {"fee_type": "DEPOP_FEE", "amount": "3.00", "currency": "GBP"},
            {"fee_type": "PAYMENT_FEE", "amount": "2.00", "currency": "GBP"},
        ],
        "created_at": "2025-01-01T00:00:00Z",
    }


def signed_webhooks(count: int, tag: str) -> list[tuple[bytes, dict[str, str]]]:
    """`count` distinct signed webhooks, built before the clock starts."""
    from connectors.signatures import sign_timestamped_hex

    timestamp = str(int(datetime.now(UTC).timestamp()))
    out = []
    for n in range(count):
        body = json.dumps(
            {
                "id": f"{tag}-{n}-{uuid.uuid4()}",
                "event_type": "v1:order.new",
                "created_at": "2025-01-01T00:00:00Z",
                "data": _order(n),
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-depop-timestamp": timestamp,
            "x-depop-signature": sign_timestamped_hex(
                secret=SECRET, timestamp=timestamp, body=body
            ),
        }
        out.append((body, headers))
    return out


# -- the servers (run in a subprocess) -----------------------------------------------------------


def _hub_app(url: str) -> FastAPI:
    from pydantic import SecretStr

    from connectors.depop import DepopSettings
    from hub.app import create_app
    from hub.config import HubSettings, Settings
    from hub.wiring import build_runtime

    settings = Settings(
        HubSettings(database_url=url, admin_tokens=[SecretStr("bench")]),
        depop=DepopSettings(api_key=SecretStr(API_KEY), webhook_secret=SecretStr(SECRET)),
    )
    return create_app(build_runtime(settings))


def _bare_app(url: str) -> FastAPI:
    """The same framework, server and database, doing only what cannot be avoided: read the
    body and insert it as an inbound event row."""
    from sqlalchemy import insert

    from hub.db import Database
    from hub.inbox.models import InboundEvent
    from hub.types import utcnow

    db = Database(url)
    app = FastAPI()
    table = InboundEvent.__table__  # type: ignore[attr-defined]
    # The leanest insert SQLAlchemy offers: one compiled statement, values bound per call.
    statement = insert(table).returning(table.c.id)

    def store(body: bytes) -> int:
        with db.transaction() as session:
            event_id = session.execute(
                statement,
                {
                    "channel": "depop",
                    "connection": "depop/default",
                    "external_id": uuid.uuid4().hex,
                    "event_type": "bare",
                    "body": body,
                    "status": "pending",
                    "replays": 0,
                    "received_at": utcnow(),
                },
            ).scalar_one()
        return int(event_id)

    @app.post("/webhooks/{channel}")
    async def receive(channel: str, request: Request) -> dict[str, object]:
        event_id = await run_in_threadpool(store, await request.body())
        return {"status": "accepted", "event_id": event_id}

    return app


def _hello_app() -> FastAPI:
    """The same framework and server answering without reading the body or touching a
    database: the ceiling of this stack on this machine."""
    app = FastAPI()

    @app.post("/webhooks/{channel}")
    async def receive(channel: str) -> dict[str, object]:
        return {"status": "accepted", "event_id": 0}

    return app


def serve(kind: str, url: str, port: int) -> None:
    """Serve the hub or the bare app on loopback until terminated."""
    import uvicorn

    from hub.logging import configure_logging

    configure_logging("json", "info")  # the hub's production logging, to a discarded stderr
    app = {"hub": _hub_app, "bare": _bare_app}[kind](url) if kind != "hello" else _hello_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


# -- the load -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(kind: str, url: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", "--serve", kind, "--url", url, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def _request(body: bytes, headers: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 request, built before the clock starts."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        "POST /webhooks/depop HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"content-length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    answer = await reader.readexactly(length)
    if status != b"200" or b'"accepted"' not in answer:
        raise RuntimeError(f"{status.decode()}: {answer.decode(errors='replace')}")


async def _load(
    base: str, webhooks: Sequence[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[float, list[float]]:
    """Send every webhook over `concurrency` keep-alive connections; (seconds taken, latencies
    in seconds). A minimal HTTP/1.1 client: a general one (httpx) spends more CPU per request
    than the server under test, on the same cores."""
    host, port = base.removeprefix("http://").split(":")
    requests = iter([_request(body, headers) for body, headers in webhooks])
    latencies: list[float] = []

    async def sender() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in requests:
                started = time.perf_counter()
                await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def measure(base: str, tag: str, requests: int = REQUESTS) -> dict[str, float]:
    """One round against a running server: time `requests` fresh webhooks."""
    webhooks = signed_webhooks(requests, tag)
    elapsed, latencies = asyncio.run(_load(base, webhooks, CONCURRENCY))
    ordered = sorted(latencies)
    return {
        "per_s": requests / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }


# -- databases ----------------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    from hub.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        url = f"sqlite:///{tmp}/hub.db"
        upgrade(url)
        yield url


def _compare(backend: str, url: str, rounds: int = ROUNDS) -> list[dict[str, object]]:
    results: dict[str, list[dict[str, float]]] = {"hub": [], "bare": [], "hello": []}
    with server("hub", url) as hub, server("bare", url) as bare, server("hello", url) as hello:
        bases = {"hub": hub, "bare": bare, "hello": hello}
        for kind, base in bases.items():
            asyncio.run(_load(base, signed_webhooks(WARMUP, f"{backend}-{kind}-warm"), CONCURRENCY))
        for n in range(rounds):
            for kind in ("hub", "bare") if n % 2 == 0 else ("bare", "hub"):
                results[kind].append(measure(bases[kind], f"{backend}-{kind}-{n}"))
        # The ceiling once per backend: it does not touch the database.
        results["hello"].append(measure(hello, f"{backend}-hello"))
    rows: list[dict[str, object]] = []
    names = {
        "hub": "hub /webhooks/depop",
        "bare": "bare insert",
        "hello": "hello world (no database): the ceiling",
    }
    for kind in ("hub", "bare", "hello"):
        runs = sorted(results[kind], key=lambda r: r["per_s"])
        middle = runs[len(runs) // 2]
        rows.append(
            {
                "case": f"{backend}: {names[kind]}",
                "value": round(middle["per_s"]),
                "unit": "webhooks/s",
                "p50_ms": round(middle["p50_ms"], 2),
                "p99_ms": round(middle["p99_ms"], 2),
                "rounds": ", ".join(str(round(r["per_s"])) for r in results[kind]),
            }
        )
    # Each round's hub and bare figures were taken back to back, so their ratio cancels most of
    # what other load on the machine did; the median of those ratios is the figure.
    ratios = [h["per_s"] / b["per_s"] for h, b in zip(results["hub"], results["bare"], strict=True)]
    ratio = statistics.median(ratios)
    rows.append(
        {
            "case": f"{backend}: hub / bare throughput",
            "value": round(ratio, 2),
            "unit": "ratio",
            "target": ">= 0.8",
            "met": ratio >= 0.8,
            "rounds": ", ".join(f"{r:.2f}" for r in ratios),
        }
    )
    return rows


def run() -> list[dict[str, object]]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    rows: list[dict[str, object]] = []
    with sqlite_database() as url:
        rows.extend(_compare("sqlite", url))
    with postgres_database("ingest") as pg_url:
        if pg_url is None:
            rows.append({"case": "postgres: skipped (unreachable)", "value": None})
        else:
            rows.extend(_compare("postgres", pg_url))
    return rows


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--serve", choices=["hub", "bare", "hello"])
    parser.add_argument("--url")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.url, args.port)
        return
    from bench.__main__ import print_table

    print_table([{"bench": "ingest", **row} for row in run()])


if __name__ == "__main__":
    main(sys.argv[1:])
