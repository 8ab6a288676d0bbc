"""The stock service on a real database: atomic reservations under concurrency, all-or-nothing
multi-line orders, and a movement log that always explains the numbers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import UntrackedSkuPolicy
from hub.db import Database
from hub.inventory import repository as repo
from hub.inventory import service as inventory
from hub.jobs import queue
from tests.hub.inventory.factories import new_order, new_orders

ALLOW, REJECT = UntrackedSkuPolicy.ALLOW, UntrackedSkuPolicy.REJECT


def numbers(database: Database, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) as committed."""
    with database.reader() as session:
        item = repo.get(session, sku)
        assert item is not None
        return item.on_hand, item.reserved


def movement_totals(database: Database, sku: str) -> tuple[int, int]:
    with database.reader() as session:
        return repo.movement_totals(session, sku)


def held(database: Database, order_id: str) -> dict[str, int]:
    with database.reader() as session:
        return {r.sku: r.quantity for r in repo.reservations(session, order_id)}


def set_stock(database: Database, sku: str, on_hand: int) -> None:
    with database.transaction() as session:
        inventory.set_on_hand(session, sku, on_hand)


def reserve(
    database: Database, order_id: str, *wanted: tuple[str, int], policy: UntrackedSkuPolicy = REJECT
) -> inventory.Reservation:
    with database.transaction() as session:
        return inventory.reserve(session, order_id, wanted, policy=policy)


# -- concurrency (Postgres: real row locks between real connections) ---------------------------


def _race(database: Database, sku: str, order_ids: Sequence[str], threads: int) -> list[bool]:
    """Every order tries to reserve one unit of `sku` at once; who got one."""
    start = threading.Event()

    def attempt(order_id: str) -> bool:
        start.wait()
        return reserve(database, order_id, (sku, 1)).ok

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(attempt, order_id) for order_id in order_ids]
        start.set()
        return [f.result() for f in futures]


def _watch(database: Database, sku: str, done: threading.Event, seen: list[int]) -> None:
    """Read the committed available number until `done`: it must never dip below 0."""
    while not done.wait(0.002):
        on_hand, reserved = numbers(database, sku)
        seen.append(on_hand - reserved)


def test_200_concurrent_reservations_against_50_units_succeed_exactly_50_times(
    postgres_database: Database,
) -> None:
    db = postgres_database
    order_ids = new_orders(db, 200)
    for round_number in range(3):
        sku = f"HOT-{round_number}"  # a fresh SKU per round; the same 200 orders race again
        set_stock(db, sku, 50)
        lowest: list[int] = []
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(db, sku, done, lowest))
        watcher.start()
        try:
            results = _race(db, sku, order_ids, threads=32)
        finally:
            done.set()
            watcher.join()

        assert results.count(True) == 50, f"round {round_number}"
        assert numbers(db, sku) == (50, 50)
        assert lowest and min(lowest) >= 0
        assert movement_totals(db, sku) == (50, 50)
    with db.reader() as session:
        waiting = queue.list_jobs(session, kind=inventory.LISTING_SYNC, state="queued")
    assert sorted(job.payload["sku"] for job in waiting) == ["HOT-0", "HOT-1", "HOT-2"]


def test_concurrent_multi_line_orders_in_opposite_line_order_neither_deadlock_nor_oversell(
    postgres_database: Database,
) -> None:
    db = postgres_database
    set_stock(db, "PAIR-A", 20)
    set_stock(db, "PAIR-B", 20)
    forwards = [new_order(db, ("PAIR-A", 1), ("PAIR-B", 1)) for _ in range(30)]
    backwards = [new_order(db, ("PAIR-B", 1), ("PAIR-A", 1)) for _ in range(30)]
    start = threading.Event()

    def attempt(order_id: str, lines: tuple[tuple[str, int], ...]) -> bool:
        start.wait()
        return reserve(db, order_id, *lines).ok

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(attempt, o, (("PAIR-A", 1), ("PAIR-B", 1))) for o in forwards]
        futures += [pool.submit(attempt, o, (("PAIR-B", 1), ("PAIR-A", 1))) for o in backwards]
        start.set()
        results = [f.result() for f in futures]

    assert results.count(True) == 20
    assert numbers(db, "PAIR-A") == (20, 20)
    assert numbers(db, "PAIR-B") == (20, 20)


# -- all or nothing ----------------------------------------------------------------------------


def test_a_multi_line_order_short_of_one_sku_holds_none_of_the_others(database: Database) -> None:
    set_stock(database, "A", 5)
    set_stock(database, "B", 1)
    order_id = new_order(database, ("A", 2), ("B", 2))

    result = reserve(database, order_id, ("A", 2), ("B", 2))

    assert result == inventory.Reservation(False, ("B",))
    assert numbers(database, "A") == (5, 0)
    assert numbers(database, "B") == (1, 0)
    assert held(database, order_id) == {}
    assert movement_totals(database, "A") == (5, 0)


def test_lines_of_the_same_sku_are_reserved_together(database: Database) -> None:
    set_stock(database, "A", 3)
    order_id = new_order(database, ("A", 2), ("A", 2))

    assert not reserve(database, order_id, ("A", 2), ("A", 2)).ok
    assert reserve(database, order_id, ("A", 2), ("A", 1)).ok
    assert numbers(database, "A") == (3, 3)


def test_reserving_again_for_the_same_order_takes_nothing_more(database: Database) -> None:
    set_stock(database, "A", 5)
    order_id = new_order(database, ("A", 2))

    assert reserve(database, order_id, ("A", 2)).ok
    assert reserve(database, order_id, ("A", 2)).ok

    assert numbers(database, "A") == (5, 2)
    assert held(database, order_id) == {"A": 2}


def test_an_untracked_sku_sells_without_a_reservation_when_allowed(database: Database) -> None:
    order_id = new_order(database, ("NEW", 1))

    assert reserve(database, order_id, ("NEW", 1), policy=ALLOW).ok

    assert held(database, order_id) == {}
    with database.reader() as session:
        assert repo.get(session, "NEW") is None


def test_an_untracked_sku_is_out_of_stock_when_untracked_skus_are_rejected(
    database: Database,
) -> None:
    set_stock(database, "KNOWN", 5)
    order_id = new_order(database, ("KNOWN", 1), ("NEW", 1))

    result = reserve(database, order_id, ("KNOWN", 1), ("NEW", 1), policy=REJECT)

    assert result == inventory.Reservation(False, ("NEW",))
    assert numbers(database, "KNOWN") == (5, 0)


def test_shipping_commits_held_units_and_release_returns_only_the_rest(database: Database) -> None:
    set_stock(database, "A", 5)
    order_id = new_order(database, ("A", 3))
    reserve(database, order_id, ("A", 3))

    with database.transaction() as session:
        inventory.commit(session, order_id, "A", 2)
    assert numbers(database, "A") == (3, 1)

    with database.transaction() as session:
        inventory.release(session, order_id)
    assert numbers(database, "A") == (3, 0)
    with database.reader() as session:
        reasons = [m.reason for m in reversed(repo.movements(session, "A"))]
    assert reasons == ["restock", "reserve", "commit", "release"]
    assert movement_totals(database, "A") == (3, 0)


def test_a_count_below_what_orders_hold_is_refused_and_changes_nothing(
    database: Database,
) -> None:
    set_stock(database, "A", 5)
    reserve(database, new_order(database, ("A", 4)), ("A", 4))

    with pytest.raises(inventory.StockBelowReserved), database.transaction() as session:
        inventory.set_on_hand(session, "A", 3)

    assert numbers(database, "A") == (5, 4)
    assert movement_totals(database, "A") == (5, 4)


# -- the invariant, under random sequences -----------------------------------------------------

ORDERS = 3

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, ORDERS - 1), st.integers(1, 4)),
        st.tuples(st.just("commit"), st.integers(0, ORDERS - 1), st.integers(1, 4)),
        st.tuples(st.just("release"), st.integers(0, ORDERS - 1), st.integers(1, 4)),
        st.tuples(st.just("release_units"), st.integers(0, ORDERS - 1), st.integers(1, 4)),
        st.tuples(st.just("restock"), st.just(0), st.integers(0, 8)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_any_sequence_keeps_on_hand_above_reserved_above_zero_and_the_log_explains_it(
    database: Database, ops: list[tuple[str, int, int]]
) -> None:
    sku = f"H-{uuid.uuid4().hex[:10]}"  # examples share the database: each gets its own SKU
    set_stock(database, sku, 3)
    order_ids = new_orders(database, ORDERS)
    for op, which, n in ops:
        order_id = order_ids[which]
        try:
            with database.transaction() as session:
                if op == "reserve":
                    inventory.reserve(session, order_id, [(sku, n)], policy=REJECT)
                elif op == "commit":
                    inventory.commit(session, order_id, sku, n)
                elif op == "release":
                    inventory.release(session, order_id)
                elif op == "release_units":
                    inventory.release_units(session, order_id, sku, n)
                else:
                    inventory.set_on_hand(session, sku, n)
        except inventory.StockBelowReserved:
            pass
        with database.reader() as session:
            item = repo.get(session, sku)
            assert item is not None
            on_hand, reserved = item.on_hand, item.reserved
            assert on_hand >= reserved >= 0, (op, on_hand, reserved)
            assert repo.movement_totals(session, sku) == (on_hand, reserved)
            holding = [repo.reservation(session, o, sku) for o in order_ids]
            assert sum(r.quantity for r in holding if r is not None) == reserved
