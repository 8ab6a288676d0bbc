"""Stock rules: reserve all or nothing, commit on shipment, release on cancel or reject, and
tell the other channels whenever a SKU's available quantity changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from hub.config import UntrackedSkuPolicy
from hub.errors import DomainError
from hub.inventory import repository as repo
from hub.inventory.models import StockReservation
from hub.jobs import queue

LISTING_SYNC = "inventory.sync_listing"

# Called, in the transaction that freed them, with the SKUs whose units came free (a release,
# a restock): the orders domain hands them to paid orders waiting for them.
UnitsFreed = Callable[[Session, Sequence[str]], None]
_units_freed: list[UnitsFreed] = []


def on_units_freed(hook: UnitsFreed) -> UnitsFreed:
    """Register `hook` to hear of SKUs whose units came free."""
    if hook not in _units_freed:
        _units_freed.append(hook)
    return hook


def _freed(session: Session, skus: Sequence[str]) -> None:
    for hook in _units_freed:
        hook(session, skus)


class StockBelowReserved(DomainError):
    """An on_hand figure lower than what orders already hold."""

    status = 409
    code = "stock_below_reserved"

    def __init__(self, sku: str, on_hand: int, reserved: int) -> None:
        super().__init__(f"{sku}: on_hand {on_hand} is below the {reserved} units reserved")
        self.sku = sku


@dataclass(frozen=True, slots=True)
class Reservation:
    """What `reserve` did: everything held (`ok`), or nothing and the first SKU that was short."""

    ok: bool
    short: tuple[str, ...] = ()


def reserve(
    session: Session,
    order_id: str,
    wanted: Iterable[tuple[str, int]],
    *,
    policy: UntrackedSkuPolicy,
    origin_channel: str | None = None,
) -> Reservation:
    """Hold every (sku, quantity) for `order_id`, or nothing at all.

    Idempotent: SKUs the order already holds are not taken twice. The rows that explain the
    hold are written first, then the listing syncs are joined (a key-share lock on each waiting
    sync job, which no other reservation waits for), and the stock rows are updated last by one
    conditional statement for every SKU, so a hot SKU's row stays locked from that statement to
    the commit only; a SKU that turns out short undoes the rest (the rare path). A SKU with no
    sync waiting gets one queued after the stock rows, in the order release and counts take
    stock row then job row, so the two never deadlock. On Postgres all of that but the rare
    paths is one prebuilt statement (`_reserve_one`, `_reserve_many`); the statements below
    serve SQLite.
    """
    totals: Counter[str] = Counter()
    for sku, quantity in wanted:
        totals[sku] += quantity
    wanted_now = {sku: q for sku, q in totals.items() if q > 0}
    if wanted_now and session.get_bind().dialect.name == "postgresql":
        if len(wanted_now) == 1:
            [(sku, quantity)] = wanted_now.items()
            return _reserve_one(session, order_id, sku, quantity, policy, origin_channel)
        return _reserve_many(session, order_id, wanted_now, policy, origin_channel)
    held, movements = repo.hold_and_log(session, order_id, wanted_now)
    # Not written: held already, or no stock row. The second is short only under REJECT.
    untracked: set[str] = set()
    if policy is UntrackedSkuPolicy.REJECT and len(held) < len(wanted_now):
        missing = sorted(set(wanted_now) - set(held))
        untracked = set(missing) - repo.tracked(session, missing)
    if not held or untracked:
        if untracked:
            repo.undo_hold(session, order_id, held, set(), movements)
            return Reservation(False, (min(untracked),))
        return Reservation(True)
    # The listing syncs are joined before the stock rows are taken, without waiting for anyone
    # (a key-share lock on the waiting job: `queue.coalesce_waiting`), so the conditional
    # UPDATE is the last statement and a hot SKU's row stays locked for it and the commit only.
    syncs = _listing_syncs(sorted(held), origin_channel)
    left = queue.coalesce_waiting(session, syncs, merge=_tell_every_channel_unless_same_origin)
    taken = repo.take_all(session, held)
    short = set(held) - taken
    if short:
        # A joined sync finds nothing changed; it runs anyway, which is harmless.
        repo.undo_hold(session, order_id, held, taken, movements)
        return Reservation(False, (min(short),))
    if left:
        # No sync waiting for a SKU (or its payload must change): queued after the stock rows,
        # in the order release and counts take stock row then job row.
        queue.enqueue_coalesced(
            session, LISTING_SYNC, left, merge=_tell_every_channel_unless_same_origin
        )
    return Reservation(True)


class StockMoved(Exception):
    """A stock row changed between `reserve_many`'s read and its update (possible on SQLite,
    which does not lock rows on read): nothing is written, the caller goes one order at a time."""


def reserve_many(
    session: Session,
    wanted: Sequence[tuple[str, Iterable[tuple[str, int]]]],
    *,
    policy: UntrackedSkuPolicy,
    origin_channels: Sequence[str | None],
) -> list[Reservation]:
    """`reserve` for several orders that hold nothing yet (a page of new orders), one after
    another in their order, each all or nothing, in a few statements for all of them: what
    `reserve` one order after another would give (which order gets the last units included).

    The stock rows are locked and read once, in SKU order; each order is decided against what
    the earlier ones took; then the reservation rows, their movements, one conditional UPDATE
    of every SKU (by the page's total) and the listing syncs (joined or queued by origin, as
    `reserve` does) are written. `origin_channels[i]` is the i-th order's `origin_channel`.
    An order holding a row already makes the insert fail (IntegrityError): the caller must
    not pass one.
    """
    requests: list[tuple[str, dict[str, int]]] = []
    for order_id, lines in wanted:
        totals: Counter[str] = Counter()
        for sku, quantity in lines:
            totals[sku] += quantity
        requests.append((order_id, {sku: q for sku, q in totals.items() if q > 0}))
    rows = repo.lock_many(session, sorted({sku for _, w in requests for sku in w}))
    available = {sku: on_hand - reserved for sku, (on_hand, reserved) in rows.items()}
    results: list[Reservation] = []
    taken: list[tuple[str, dict[str, int]]] = []
    by_origin: dict[str | None, set[str]] = {}
    for (order_id, wanted_now), origin in zip(requests, origin_channels, strict=True):
        held = {sku: q for sku, q in wanted_now.items() if sku in rows}
        if policy is UntrackedSkuPolicy.REJECT and len(held) < len(wanted_now):
            results.append(Reservation(False, (min(set(wanted_now) - set(held)),)))
            continue
        short = [sku for sku, q in held.items() if available[sku] < q]
        if short:
            results.append(Reservation(False, (min(short),)))
            continue
        for sku, q in held.items():
            available[sku] -= q
        if held:
            taken.append((order_id, held))
            by_origin.setdefault(origin, set()).update(held)
        results.append(Reservation(True))
    if not taken:
        return results
    total: Counter[str] = Counter()
    for _, held in taken:
        total.update(held)
    repo.hold_many(session, taken)
    left = [
        (
            origin,
            queue.coalesce_waiting(
                session,
                _listing_syncs(sorted(skus), origin),
                merge=_tell_every_channel_unless_same_origin,
            ),
        )
        for origin, skus in by_origin.items()
    ]
    if repo.take_all(session, dict(total)) != set(total):
        raise StockMoved(f"stock of {sorted(total)} changed under a page's reservation")
    for _, syncs in left:
        if syncs:
            queue.enqueue_coalesced(
                session, LISTING_SYNC, syncs, merge=_tell_every_channel_unless_same_origin
            )
    return results


def _reserve_one(
    session: Session,
    order_id: str,
    sku: str,
    quantity: int,
    policy: UntrackedSkuPolicy,
    origin_channel: str | None,
) -> Reservation:
    """`reserve` of a single SKU on Postgres (most orders, and every hot SKU's): the rows, the
    sync's key-share join and the conditional UPDATE are one prebuilt statement
    (`repo.reserve_one`), so the reservation costs a statement and a commit, as the bare
    UPDATE does, and the stock row stays locked for the UPDATE and the commit only."""
    payload = {"sku": sku, "skip_channel": origin_channel}
    movement, taken, waiting = repo.reserve_one(session, order_id, sku, quantity, _key(sku))
    if movement is None:
        # Held already (idempotent), or no stock row: short only under REJECT.
        if policy is UntrackedSkuPolicy.REJECT and not repo.tracked(session, [sku]):
            return Reservation(False, (sku,))
        return Reservation(True)
    if not taken:
        repo.undo_hold(session, order_id, {sku: quantity}, (), [movement])
        return Reservation(False, (sku,))
    merge = _tell_every_channel_unless_same_origin
    if waiting is None or merge(waiting, payload) != waiting:
        # No sync waiting (or its payload must change): queued after the stock row, in the
        # order release and counts take stock row then job row.
        queue.enqueue_coalesced(session, LISTING_SYNC, [(_key(sku), payload)], merge=merge)
    return Reservation(True)


def _reserve_many(
    session: Session,
    order_id: str,
    wanted: dict[str, int],
    policy: UntrackedSkuPolicy,
    origin_channel: str | None,
) -> Reservation:
    """`reserve` of several SKUs on Postgres: one prebuilt statement (`repo.reserve_many`) and
    the commit, the stock rows locked in SKU order and taken last."""
    done = repo.reserve_many(session, order_id, wanted, {sku: _key(sku) for sku in wanted})
    untracked: set[str] = set()
    if policy is UntrackedSkuPolicy.REJECT and len(done.held) < len(wanted):
        missing = sorted(set(wanted) - set(done.held))
        untracked = set(missing) - repo.tracked(session, missing)
    short = set(done.held) - done.taken
    if untracked or short:
        repo.undo_hold(session, order_id, done.held, done.taken, done.movements)
        return Reservation(False, (min(untracked or short),))
    if not done.held:
        return Reservation(True)
    merge = _tell_every_channel_unless_same_origin
    left = []
    for key, payload in _listing_syncs(sorted(done.held), origin_channel):
        waiting = done.joined.get(key)
        if waiting is None or merge(waiting, payload) != waiting:
            left.append((key, payload))
    if left:
        # No sync waiting for a SKU (or its payload must change): queued after the stock rows,
        # in the order release and counts take stock row then job row.
        queue.enqueue_coalesced(session, LISTING_SYNC, left, merge=merge)
    return Reservation(True)


def lock(session: Session, skus: Iterable[str]) -> None:
    """Lock the stock rows of `skus` now, in SKU order, for a transaction that goes on to
    reserve, release or commit several orders' units: one order at a time, each in SKU order,
    would still take the rows out of order across the orders and could deadlock with another
    transaction taking the same SKUs in order. Rows locked already are not waited for again."""
    repo.lock_many(session, sorted(set(skus)))


def commit(session: Session, order_id: str, sku: str, quantity: int) -> None:
    """`quantity` units of `sku` shipped for `order_id`: they leave on_hand and the reservation."""
    item = repo.get(session, sku, for_update=True)
    if item is None:
        return
    reservation = repo.reservation(session, order_id, sku)
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
    if on_hand - item.on_hand != -from_reserved:
        request_listing_sync(session, sku, None)


def release(session: Session, order_id: str, skus: Iterable[str] | None = None) -> None:
    """Give back what `order_id` still holds (of `skus`, or of every SKU)."""
    only = set(skus) if skus is not None else None
    for reservation in repo.reservations(session, order_id):
        if reservation.quantity <= 0 or (only is not None and reservation.sku not in only):
            continue
        _give_back(session, reservation, reservation.quantity)


def release_units(session: Session, order_id: str, sku: str, quantity: int) -> None:
    """Give back `quantity` held units of `sku` (a cancelled line of a larger order)."""
    reservation = repo.reservation(session, order_id, sku)
    if reservation is not None and reservation.quantity > 0 and quantity > 0:
        _give_back(session, reservation, min(quantity, reservation.quantity))


def _give_back(session: Session, reservation: StockReservation, quantity: int) -> None:
    repo.give_back(session, reservation.sku, quantity)
    reservation.quantity -= quantity
    reservation.released += quantity
    session.add(reservation)
    repo.add_movement(
        session,
        reservation.sku,
        "release",
        reserved_delta=-quantity,
        order_id=reservation.order_id,
    )
    request_listing_sync(session, reservation.sku, None)
    _freed(session, [reservation.sku])


@dataclass(frozen=True, slots=True)
class Count:
    """A SKU's numbers after a count was applied."""

    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def set_on_hand(session: Session, sku: str, on_hand: int, note: str | None = None) -> Count:
    """An operator's count: on_hand becomes `on_hand` (StockBelowReserved if orders hold more)."""
    return set_on_hand_many(session, [(sku, on_hand)], note=note)[0]


def set_on_hand_many(
    session: Session, counts: Sequence[tuple[str, int]], note: str | None = None
) -> list[Count]:
    """Counts for many SKUs (an import), all applied or, on StockBelowReserved, none: the
    caller's transaction rolls back. The result is in SKU order.

    A SKU counted for the first time becomes tracked, even at 0, and the channels are told,
    since until now it sold without limit. Rows are locked in SKU order, as reservations lock
    them, and a few statements serve the whole batch.
    """
    wanted = dict(counts)
    if len(wanted) != len(counts):
        raise ValueError("each SKU may be counted once")
    if any(n < 0 for n in wanted.values()):
        raise ValueError("on_hand must not be negative")
    skus = sorted(wanted)
    now = repo.lock_many(session, skus)
    new = [sku for sku in skus if sku not in now]
    if new:
        repo.create_many(session, new)
        now.update(repo.lock_many(session, new))
    for sku in skus:
        if wanted[sku] < now[sku][1]:
            raise StockBelowReserved(sku, wanted[sku], now[sku][1])
    changed = [(sku, wanted[sku]) for sku in skus if wanted[sku] != now[sku][0]]
    repo.set_many(session, changed)
    repo.add_restocks(session, [(sku, on_hand - now[sku][0]) for sku, on_hand in changed], note)
    told = set(new) | {sku for sku, _ in changed}
    _request_listing_syncs(session, [sku for sku in skus if sku in told])
    more = [sku for sku, on_hand in changed if on_hand > now[sku][0]]
    if more:
        _freed(session, more)
    return [Count(sku, wanted[sku], now[sku][1]) for sku in skus]


def request_listing_sync(session: Session, sku: str, origin_channel: str | None) -> None:
    """Queue one listing update for `sku`, coalesced with any still waiting.

    The job reads the available number when it runs, so one queued job covers every change
    made before it starts. The channel where a sale happened already knows; it is skipped
    unless another change to the same SKU came from elsewhere.
    """
    queue.enqueue_coalesced(
        session,
        LISTING_SYNC,
        [(_key(sku), {"sku": sku, "skip_channel": origin_channel})],
        merge=_tell_every_channel_unless_same_origin,
    )


def _tell_every_channel_unless_same_origin(
    waiting: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    if waiting.get("skip_channel") == new.get("skip_channel"):
        return waiting
    return {**waiting, "skip_channel": None}


def _request_listing_syncs(
    session: Session, skus: Sequence[str], origin_channel: str | None = None
) -> None:
    """`request_listing_sync(sku, origin_channel)` for each of `skus`, with one look-up for the
    batch."""
    queue.enqueue_coalesced(
        session,
        LISTING_SYNC,
        _listing_syncs(skus, origin_channel),
        merge=_tell_every_channel_unless_same_origin,
    )


def _listing_syncs(
    skus: Sequence[str], origin_channel: str | None
) -> list[tuple[str, dict[str, Any]]]:
    return [(_key(sku), {"sku": sku, "skip_channel": origin_channel}) for sku in skus]


def _key(sku: str) -> str:
    return f"{LISTING_SYNC}:{sku}"
