"""The shared transport: failures classified once, and a deadline no server can stretch."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from connectors.base import Retriable
from connectors.http import DEFAULT_DEADLINE_SECONDS, deadline, send


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of a test, so handlers still blocked in pool threads return at once."""
    event = threading.Event()
    yield event
    event.set()


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(handler))


def test_default_deadline_is_well_inside_the_job_lease() -> None:
    assert DEFAULT_DEADLINE_SECONDS <= 60


def test_an_answer_slower_than_the_deadline_is_retriable_at_the_deadline(
    release: threading.Event,
) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return httpx.Response(200)

    started = time.monotonic()
    with deadline(0.2), pytest.raises(Retriable) as caught:
        send(client_for(slow), "GET", "/slow")
    assert time.monotonic() - started < 1.0
    assert "0.2 s deadline" in caught.value.reason


def test_the_deadline_covers_every_request_of_an_operation() -> None:
    sent: list[str] = []

    def steady(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        time.sleep(0.15)
        return httpx.Response(200)

    client = client_for(steady)
    started = time.monotonic()
    with deadline(0.4), pytest.raises(Retriable):
        for step in range(10):
            send(client, "GET", f"/step/{step}")
    assert time.monotonic() - started < 0.8
    # Each request alone is fast; together they outlast the operation's deadline.
    assert 1 <= len(sent) <= 3


def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    with deadline(0.01), pytest.raises(Retriable) as caught:
        time.sleep(0.02)
        send(client_for(record), "POST", "/orders")
    assert sent == []
    assert "not sent" in caught.value.reason


def test_a_nested_deadline_never_extends_the_outer_one(release: threading.Event) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return httpx.Response(200)

    started = time.monotonic()
    with deadline(0.2), deadline(30), pytest.raises(Retriable):
        send(client_for(slow), "GET", "/slow")
    assert time.monotonic() - started < 1.0


def test_each_phase_timeout_is_clamped_to_what_is_left() -> None:
    seen: dict[str, float] = {}

    def record(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200)

    with deadline(2.0):
        send(client_for(record), "GET", "/x")
    assert set(seen) == {"connect", "read", "write", "pool"}
    assert all(0 < value <= 2.0 for value in seen.values())


@pytest.mark.parametrize(
    ("status", "header", "after"), [(429, "7", 7.0), (503, "30", 30.0), (500, None, None)]
)
def test_rate_limits_and_server_errors_are_retriable_with_retry_after(
    status: int, header: str | None, after: float | None
) -> None:
    headers = {"Retry-After": header} if header else {}
    client = client_for(lambda request: httpx.Response(status, headers=headers))
    with pytest.raises(Retriable) as caught:
        send(client, "GET", "/x")
    assert caught.value.after == after


def test_a_connection_failure_is_retriable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Retriable):
        send(client_for(refuse), "GET", "/x")


def test_other_answers_are_returned_for_the_caller_to_map() -> None:
    client = client_for(lambda request: httpx.Response(422, json={"code": 422}))
    assert send(client, "POST", "/x", json={}).status_code == 422


def test_a_server_trickling_its_answer_cannot_hold_the_call_past_the_deadline(
    release: threading.Event,
) -> None:
    """Over a real socket: each byte arrives well within httpx's read timeout, so only the
    overall deadline stops the call."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):
                if release.wait(0.05):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(1.0))
    started = time.monotonic()
    try:
        with deadline(0.5), pytest.raises(Retriable):
            send(client, "GET", "/trickle")
        assert time.monotonic() - started < 1.2
    finally:
        release.set()
        thread.join(2)
        server.close()
        client.close()
