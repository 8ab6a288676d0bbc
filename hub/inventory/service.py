"""Stock rules: reserve all or nothing, commit on shipment, release on cancel or reject, and
tell the other channels whenever a SKU's available quantity changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from hub.config import UntrackedSkuPolicy
from hub.ids import new_id
from hub.inventory import repository as repo
from hub.inventory.models import StockItem, StockReservation
from hub.jobs import queue
from hub.jobs.models import Job, JobState

LISTING_SYNC = "inventory.sync_listing"


class StockBelowReserved(Exception):
    """An on_hand figure lower than what orders already hold."""

    def __init__(self, sku: str, on_hand: int, reserved: int) -> None:
        super().__init__(f"{sku}: on_hand {on_hand} is below the {reserved} units reserved")
        self.sku = sku


@dataclass(frozen=True, slots=True)
class Reservation:
    ok: bool
    short: tuple[str, ...] = ()  # SKUs that could not be reserved


def reserve(
    session: Session,
    order_id: str,
    wanted: Iterable[tuple[str, int]],
    *,
    policy: UntrackedSkuPolicy,
    origin_channel: str | None = None,
) -> Reservation:
    """Hold every (sku, quantity) for `order_id`, or nothing at all.

    SKUs are taken in sorted order so two multi-line orders never deadlock on each other's rows.
    Idempotent: SKUs the order already holds are not taken twice.
    """
    totals: Counter[str] = Counter()
    for sku, quantity in wanted:
        totals[sku] += quantity
    held = {r.sku for r in repo.reservations(session, order_id)}
    short: list[str] = []
    taken: list[tuple[str, int]] = []
    savepoint = session.begin_nested()
    for sku in sorted(totals):
        if sku in held:
            continue
        quantity = totals[sku]
        if repo.take(session, sku, quantity):
            taken.append((sku, quantity))
        elif repo.get(session, sku) is None and policy is UntrackedSkuPolicy.ALLOW:
            continue
        else:
            short.append(sku)
            break
    if short:
        savepoint.rollback()
        return Reservation(False, tuple(short))
    for sku, quantity in taken:
        session.add(StockReservation(order_id=order_id, sku=sku, quantity=quantity))
        repo.add_movement(session, sku, "reserve", reserved_delta=quantity, order_id=order_id)
    savepoint.commit()
    for sku, _ in taken:
        request_listing_sync(session, sku, origin_channel)
    return Reservation(True)


def commit(session: Session, order_id: str, sku: str, quantity: int) -> None:
    """`quantity` units of `sku` shipped for `order_id`: they leave on_hand and the reservation."""
    item = repo.get(session, sku, for_update=True)
    if item is None:
        return
    reservation = session.scalars(
        select(StockReservation).where(
            col(StockReservation.order_id) == order_id, col(StockReservation.sku) == sku
        )
    ).first()
    from_reserved = min(quantity, reservation.quantity) if reservation else 0
    reserved = item.reserved - from_reserved
    # A warehouse that ships more than the hub counted is right; the count never goes below
    # what other orders hold.
    on_hand = max(item.on_hand - quantity, reserved)
    repo.apply(session, sku, on_hand_delta=on_hand - item.on_hand, reserved_delta=-from_reserved)
    if reservation is not None and from_reserved:
        reservation.quantity -= from_reserved
        reservation.committed += from_reserved
        session.add(reservation)
    repo.add_movement(
        session,
        sku,
        "commit",
        on_hand_delta=on_hand - item.on_hand,
        reserved_delta=-from_reserved,
        order_id=order_id,
        note=None if on_hand == item.on_hand - quantity else "shipped more than counted",
    )
    if quantity != from_reserved:
        request_listing_sync(session, sku, None)


def release(session: Session, order_id: str, skus: Iterable[str] | None = None) -> None:
    """Give back what `order_id` still holds (of `skus`, or of every SKU)."""
    only = set(skus) if skus is not None else None
    for reservation in repo.reservations(session, order_id):
        if reservation.quantity <= 0 or (only is not None and reservation.sku not in only):
            continue
        quantity = reservation.quantity
        repo.give_back(session, reservation.sku, quantity)
        reservation.released += quantity
        reservation.quantity = 0
        session.add(reservation)
        repo.add_movement(
            session, reservation.sku, "release", reserved_delta=-quantity, order_id=order_id
        )
        request_listing_sync(session, reservation.sku, None)


def release_units(session: Session, order_id: str, sku: str, quantity: int) -> None:
    """Give back `quantity` held units of `sku` (a cancelled line of a larger order)."""
    for reservation in repo.reservations(session, order_id):
        if reservation.sku != sku or reservation.quantity <= 0:
            continue
        give = min(quantity, reservation.quantity)
        repo.give_back(session, sku, give)
        reservation.quantity -= give
        reservation.released += give
        session.add(reservation)
        repo.add_movement(session, sku, "release", reserved_delta=-give, order_id=order_id)
        request_listing_sync(session, sku, None)


def set_on_hand(session: Session, sku: str, on_hand: int, note: str | None = None) -> StockItem:
    """An operator's count (or an import): on_hand becomes `on_hand`."""
    if on_hand < 0:
        raise ValueError("on_hand must not be negative")
    old, ok = repo.set_on_hand(session, sku, on_hand)
    item = repo.get(session, sku)
    assert item is not None
    if not ok:
        raise StockBelowReserved(sku, on_hand, item.reserved)
    if on_hand != old:
        repo.add_movement(session, sku, "restock", on_hand_delta=on_hand - old, note=note)
        request_listing_sync(session, sku, None)
    return item


def request_listing_sync(session: Session, sku: str, origin_channel: str | None) -> None:
    """Queue one listing update for `sku`, coalesced with any still waiting.

    The job reads the available number when it runs, so one queued job covers every change
    made before it starts. The channel where a sale happened already knows; it is skipped
    unless another change to the same SKU came from elsewhere.
    """
    waiting = session.scalars(
        select(Job)
        .where(
            col(Job.kind) == LISTING_SYNC,
            col(Job.state) == JobState.QUEUED,
            col(Job.idempotency_key).startswith(f"listing:{sku}:"),
        )
        .limit(1)
    ).first()
    if waiting is not None:
        if waiting.payload.get("skip_channel") != origin_channel:
            waiting.payload = {**waiting.payload, "skip_channel": None}
            session.add(waiting)
        return
    queue.enqueue(
        session,
        LISTING_SYNC,
        f"listing:{sku}:{new_id('sync')}",
        {"sku": sku, "skip_channel": origin_channel},
    )
