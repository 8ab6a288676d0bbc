"""All SQL about stock. Every number changes through a conditional UPDATE, never read-then-write,
so concurrent reservations cannot oversell on any backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from hub.connections.models import ConnectionSkuExclusion
from hub.db import Prebuilt
from hub.inventory.models import StockItem, StockMovement, StockReservation
from hub.jobs.models import JobState
from hub.types import UTCDateTime, utcnow

CHUNK = 1000  # SKUs per statement: well inside every backend's limit on bound parameters


def get(session: Session, sku: str, *, for_update: bool = False) -> StockItem | None:
    return session.get(StockItem, sku, with_for_update=for_update, populate_existing=True)


def listing_view(connection: Connection, sku: str) -> tuple[int, set[str]] | None:
    """What a listing sync tells the channels of `sku`: the units available and the channel
    connections that opted out of it; None when the SKU has no stock row. One statement
    (`Database.read_one`), compiled once: a sync runs for nearly every sale."""
    rows = _LISTING_VIEW.rows(connection, {"sku": sku})
    if not rows:
        return None
    return int(rows[0]["available"]), {r["connection"] for r in rows if r["connection"]}


def hold(session: Session, order_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
    """Reservation rows for `order_id` of the SKUs of `wanted` ({sku: quantity}) that have a
    stock row and that the order does not hold yet; {sku: quantity} of the rows written.

    One statement: `INSERT ... SELECT` from the stock rows (read, not locked) with `ON CONFLICT
    DO NOTHING` on (order_id, sku), so a SKU held already and an untracked SKU are both left
    out. The units are taken by `take_all` afterwards.
    """
    if not wanted:
        return {}
    return {
        sku: q
        for sku, q in session.execute(
            _hold_statement(session, order_id, _hold_source(order_id, wanted))
        )
    }


def _hold_source(order_id: str, wanted: Mapping[str, int]) -> Any:
    quantity = case(
        {sku: literal(q, Integer) for sku, q in wanted.items()}, value=col(StockItem.sku)
    )
    return select(
        literal(order_id, String).label("order_id"),
        col(StockItem.sku),
        quantity.label("quantity"),
        literal(0, Integer).label("committed"),
        literal(0, Integer).label("released"),
        literal(utcnow(), UTCDateTime).label("created_at"),
    ).where(col(StockItem.sku).in_(sorted(wanted)))


def _hold_statement(session: Session, order_id: str, source: Any) -> Any:
    return (
        _insert(session)(StockReservation)
        .from_select(["order_id", "sku", "quantity", "committed", "released", "created_at"], source)
        .on_conflict_do_nothing(index_elements=["order_id", "sku"])
        .returning(col(StockReservation.sku), col(StockReservation.quantity))
    )


def hold_and_log(
    session: Session, order_id: str, wanted: Mapping[str, int]
) -> tuple[dict[str, int], list[int]]:
    """`hold`, then a "reserve" movement per row written (`add_movements`): ({sku: quantity}
    written, the movements' ids). The SQLite path of a reservation; Postgres writes both in
    the reservation's one statement (`reserve_one`, `reserve_many`)."""
    held = hold(session, order_id, wanted)
    return held, add_movements(session, "reserve", held, order_id=order_id) if held else []


# One SKU's reservation on Postgres, as one statement (see `reserve_one`). The CTEs run in the
# order of the final SELECT's columns: the listing sync is joined, the reservation row is
# inserted, its movement logged from the insert's RETURNING, and the stock row taken last
# (`taken` waits for the reservation row through EXISTS), so the hot row is locked for the
# UPDATE and the commit only, as in the bare UPDATE.
_RESERVE_ONE = Prebuilt(
    text(
        """
WITH joined AS (
    SELECT payload FROM jobs
    WHERE idempotency_key = :sync_key AND state = :queued
    FOR KEY SHARE
), held AS (
    INSERT INTO stock_reservations (order_id, sku, quantity, committed, released, created_at)
    SELECT :order_id, sku, :quantity, 0, 0, :now FROM stock_items WHERE sku = :sku
    ON CONFLICT (order_id, sku) DO NOTHING
    RETURNING sku
), logged AS (
    INSERT INTO stock_movements
        (sku, reason, on_hand_delta, reserved_delta, order_id, note, at)
    SELECT sku, 'reserve', 0, :quantity, :order_id, NULL, :now FROM held
    RETURNING id
), taken AS (
    UPDATE stock_items
    SET reserved = reserved + :quantity, updated_at = :now
    WHERE sku = :sku AND on_hand - reserved >= :quantity AND EXISTS (SELECT FROM held)
    RETURNING sku
)
SELECT (SELECT payload FROM joined) AS sync_payload,
       EXISTS (SELECT FROM joined) AS sync_waiting,
       (SELECT id FROM logged) AS movement,
       EXISTS (SELECT FROM taken) AS taken
"""
    )
)


def reserve_one(
    session: Session, order_id: str, sku: str, quantity: int, sync_key: str
) -> tuple[int | None, bool, dict[str, Any] | None]:
    """One SKU's reservation on Postgres in one statement, prebuilt (no ORM work): the
    reservation row and its "reserve" movement if the order does not hold the SKU yet and it has
    a stock row, then the units taken by the conditional UPDATE if that many are available, and
    a key-share lock on the waiting job of `sync_key` (as `queue.coalesce_waiting` takes it:
    claims skip it, no other reservation waits for it).

    (the movement's id if the rows were written, else None; taken; payload of the waiting job
    or None). Written but not taken leaves the two rows for the caller to undo (`undo_hold`).
    One stock row, so no lock order to keep."""
    [row] = _RESERVE_ONE.rows(
        session.connection(),
        {
            "sync_key": sync_key,
            "queued": JobState.QUEUED.value,
            "order_id": order_id,
            "sku": sku,
            "quantity": quantity,
            "now": utcnow(),
        },
    )
    payload = row["sync_payload"] if row["sync_waiting"] else None
    return row["movement"], bool(row["taken"]), payload


# Several SKUs' reservation on Postgres, as one statement (see `reserve_many`): as
# `_RESERVE_ONE`, with the stock rows locked in SKU order by `locked` before the UPDATE takes
# them, as every other stock statement takes them, so two multi-line orders never deadlock.
# The branches of the UNION ALL run in turn, so the UPDATE is the statement's last work.
_RESERVE_MANY = Prebuilt(
    text(
        """
WITH wanted AS (
    SELECT w.sku, w.quantity
    FROM unnest(CAST(:skus AS text[]), CAST(:quantities AS integer[])) AS w(sku, quantity)
), joined AS (
    SELECT idempotency_key, payload FROM jobs
    WHERE idempotency_key = ANY(CAST(:sync_keys AS text[])) AND state = :queued
    ORDER BY idempotency_key
    FOR KEY SHARE
), held AS (
    INSERT INTO stock_reservations (order_id, sku, quantity, committed, released, created_at)
    SELECT :order_id, s.sku, w.quantity, 0, 0, :now
    FROM stock_items s JOIN wanted w ON w.sku = s.sku
    ORDER BY s.sku
    ON CONFLICT (order_id, sku) DO NOTHING
    RETURNING sku, quantity
), logged AS (
    INSERT INTO stock_movements
        (sku, reason, on_hand_delta, reserved_delta, order_id, note, at)
    SELECT sku, 'reserve', 0, quantity, :order_id, NULL, :now FROM held ORDER BY sku
    RETURNING id, sku, reserved_delta
), locked AS (
    SELECT sku FROM stock_items
    WHERE sku IN (SELECT sku FROM held)
    ORDER BY sku
    FOR UPDATE
), taken AS (
    UPDATE stock_items s
    SET reserved = s.reserved + h.quantity, updated_at = :now
    FROM held h
    WHERE s.sku = h.sku AND s.sku IN (SELECT sku FROM locked)
        AND s.on_hand - s.reserved >= h.quantity
    RETURNING s.sku
)
SELECT 'sync' AS kind, idempotency_key AS sku, payload, NULL AS id, NULL AS quantity
FROM joined
UNION ALL
SELECT 'held', sku, NULL, id, reserved_delta FROM logged
UNION ALL
SELECT 'taken', sku, NULL, NULL, NULL FROM taken
"""
    )
)


@dataclass(frozen=True, slots=True)
class Reserved:
    """What `reserve_many` wrote: {sku: quantity} of the reservation rows written, their
    movements' ids, the SKUs taken, and {sync key: payload} of the waiting syncs joined."""

    held: dict[str, int]
    movements: list[int]
    taken: set[str]
    joined: dict[str, dict[str, Any]]


def reserve_many(
    session: Session, order_id: str, wanted: Mapping[str, int], sync_keys: Mapping[str, str]
) -> Reserved:
    """Several SKUs' reservation on Postgres in one statement, prebuilt: `reserve_one` for
    every {sku: quantity} of `wanted` at once, joining the waiting sync of each
    `sync_keys[sku]`. A SKU short leaves the rows written for the caller to undo."""
    skus = sorted(wanted)
    rows = _RESERVE_MANY.rows(
        session.connection(),
        {
            "skus": skus,
            "quantities": [wanted[sku] for sku in skus],
            "sync_keys": sorted(sync_keys[sku] for sku in skus),
            "queued": JobState.QUEUED.value,
            "order_id": order_id,
            "now": utcnow(),
        },
    )
    held = {r["sku"]: r["quantity"] for r in rows if r["kind"] == "held"}
    return Reserved(
        held=held,
        movements=[r["id"] for r in rows if r["kind"] == "held"],
        taken={r["sku"] for r in rows if r["kind"] == "taken"},
        joined={r["sku"]: r["payload"] for r in rows if r["kind"] == "sync"},
    )


def hold_many(session: Session, held: Sequence[tuple[str, Mapping[str, int]]]) -> None:
    """Reservation rows and their "reserve" movements for several orders (order_id, {sku:
    quantity}) that hold none of these SKUs yet: two statements. The units are taken by
    `take_all` afterwards."""
    at = utcnow()
    session.execute(
        insert(StockReservation),
        [
            {
                "order_id": order_id,
                "sku": sku,
                "quantity": q,
                "committed": 0,
                "released": 0,
                "created_at": at,
            }
            for order_id, wanted in held
            for sku, q in sorted(wanted.items())
        ],
    )
    session.execute(
        insert(StockMovement),
        [
            {
                "sku": sku,
                "reason": "reserve",
                "on_hand_delta": 0,
                "reserved_delta": q,
                "order_id": order_id,
                "note": None,
                "at": at,
            }
            for order_id, wanted in held
            for sku, q in sorted(wanted.items())
        ],
    )


def take_all(session: Session, wanted: Mapping[str, int]) -> set[str]:
    """Reserve each {sku: quantity} of `wanted` whose row has that many available; the SKUs
    taken. One conditional UPDATE: a SKU that is short is left as it is, the caller undoes the
    others (`undo_hold`) when it wants all or nothing.

    Several rows are locked in SKU order on Postgres (a sorted `FOR UPDATE` sub-select), as
    every other stock statement takes them, so two multi-line orders never deadlock.
    """
    quantity = case(
        {sku: literal(q, Integer) for sku, q in wanted.items()}, value=col(StockItem.sku)
    )
    if len(wanted) == 1:
        [sku] = wanted
        rows = col(StockItem.sku) == sku
    elif session.get_bind().dialect.name == "postgresql":
        rows = col(StockItem.sku).in_(
            select(col(StockItem.sku))
            .where(col(StockItem.sku).in_(sorted(wanted)))
            .order_by(col(StockItem.sku))
            .with_for_update()
            .scalar_subquery()
        )
    else:
        rows = col(StockItem.sku).in_(sorted(wanted))
    statement = (
        update(StockItem)
        .where(rows, col(StockItem.on_hand) - col(StockItem.reserved) >= quantity)
        .values(reserved=col(StockItem.reserved) + quantity, updated_at=utcnow())
        .returning(col(StockItem.sku))
        .execution_options(synchronize_session=False)
    )
    return set(session.execute(statement).scalars())


def undo_hold(
    session: Session,
    order_id: str,
    held: Mapping[str, int],
    taken: Iterable[str],
    movements: Sequence[int],
) -> None:
    """Undo what `hold`, `take_all` and `add_movements` wrote for a reservation that failed:
    the units taken go back, the rows written go away (the rare path: one statement each)."""
    for sku in sorted(taken):
        give_back(session, sku, held[sku])
    if held:
        session.execute(
            delete(StockReservation).where(
                col(StockReservation.order_id) == order_id,
                col(StockReservation.sku).in_(sorted(held)),
            )
        )
    if movements:
        session.execute(delete(StockMovement).where(col(StockMovement.id).in_(movements)))


def tracked(session: Session, skus: Sequence[str]) -> set[str]:
    """Those of `skus` that have a stock row."""
    return set(
        session.execute(select(col(StockItem.sku)).where(col(StockItem.sku).in_(skus))).scalars()
    )


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def give_back(session: Session, sku: str, quantity: int) -> None:
    session.execute(
        update(StockItem)
        .where(col(StockItem.sku) == sku)
        .values(reserved=StockItem.reserved - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def apply(session: Session, sku: str, *, on_hand_delta: int, reserved_delta: int) -> None:
    """Shift both numbers of a row the caller holds locked."""
    session.execute(
        update(StockItem)
        .where(col(StockItem.sku) == sku)
        .values(
            on_hand=StockItem.on_hand + on_hand_delta,
            reserved=StockItem.reserved + reserved_delta,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def lock_many(session: Session, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) of each SKU of `skus` that has a row, the rows locked in SKU order
    (the order reservations take them in, so the two never deadlock)."""
    found: dict[str, tuple[int, int]] = {}
    ordered = sorted(skus)
    for start in range(0, len(ordered), CHUNK):
        query = (
            select(col(StockItem.sku), col(StockItem.on_hand), col(StockItem.reserved))
            .where(col(StockItem.sku).in_(ordered[start : start + CHUNK]))
            .order_by(col(StockItem.sku))
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        found.update(
            {sku: (on_hand, reserved) for sku, on_hand, reserved in session.execute(query)}
        )
    return found


def create_many(session: Session, skus: Sequence[str]) -> None:
    """Rows at 0 for `skus`; a row another transaction created meanwhile is left as it is."""
    if not skus:
        return
    now = utcnow()
    # An executemany of one compiled INSERT (sent as multi-row statements by SQLAlchemy): a
    # statement of literal rows compiled anew per chunk cost more than the database did.
    session.connection().execute(
        _insert(session)(StockItem.__table__).on_conflict_do_nothing(index_elements=["sku"]),  # type: ignore[attr-defined]
        [{"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": now} for sku in skus],
    )


def set_many(session: Session, counts: Sequence[tuple[str, int]]) -> None:
    """Set on_hand of rows the caller holds locked (and has checked against `reserved`)."""
    if not counts:
        return
    now = utcnow()
    session.connection().execute(
        update(StockItem)
        .where(
            col(StockItem.sku) == bindparam("b_sku"),
            col(StockItem.reserved) <= bindparam("b_on_hand"),
        )
        .values(on_hand=bindparam("b_on_hand"), updated_at=now),
        [{"b_sku": sku, "b_on_hand": on_hand} for sku, on_hand in counts],
    )


def reservations(session: Session, order_id: str) -> Sequence[StockReservation]:
    """What `order_id` holds, sorted by SKU: the order in which stock rows are locked."""
    return session.scalars(
        select(StockReservation)
        .where(col(StockReservation.order_id) == order_id)
        .order_by(col(StockReservation.sku))
    ).all()


def reservation(session: Session, order_id: str, sku: str) -> StockReservation | None:
    return session.scalars(
        select(StockReservation).where(
            col(StockReservation.order_id) == order_id, col(StockReservation.sku) == sku
        )
    ).first()


def add_movement(
    session: Session,
    sku: str,
    reason: str,
    *,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    order_id: str | None = None,
    note: str | None = None,
) -> None:
    session.add(
        StockMovement(
            sku=sku,
            reason=reason,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            order_id=order_id,
            note=note,
        )
    )


def add_movements(
    session: Session, reason: str, reserved: Mapping[str, int], *, order_id: str
) -> list[int]:
    """One movement per {sku: reserved_delta}, in one statement; their ids."""
    at = utcnow()
    rows = [
        {
            "sku": sku,
            "reason": reason,
            "on_hand_delta": 0,
            "reserved_delta": delta,
            "order_id": order_id,
            "note": None,
            "at": at,
        }
        for sku, delta in sorted(reserved.items())
    ]
    return list(
        session.execute(
            insert(StockMovement).values(rows).returning(col(StockMovement.id))
        ).scalars()
    )


def add_restocks(session: Session, deltas: Sequence[tuple[str, int]], note: str | None) -> None:
    """One restock movement per (sku, on_hand_delta), in a few multi-row statements (an
    import's thousands of counts)."""
    if not deltas:
        return
    at = utcnow()
    rows = [
        {
            "sku": sku,
            "reason": "restock",
            "on_hand_delta": delta,
            "reserved_delta": 0,
            "order_id": None,
            "note": note,
            "at": at,
        }
        for sku, delta in deltas
    ]
    # An executemany of one compiled INSERT (sent as multi-row statements by SQLAlchemy).
    session.connection().execute(insert(StockMovement.__table__), rows)  # type: ignore[attr-defined]


def movement_totals(session: Session, sku: str) -> tuple[int, int]:
    """(sum of on_hand deltas, sum of reserved deltas): must equal the item's numbers."""
    row = session.execute(
        select(
            func.coalesce(func.sum(StockMovement.on_hand_delta), 0),
            func.coalesce(func.sum(StockMovement.reserved_delta), 0),
        ).where(col(StockMovement.sku) == sku)
    ).one()
    return int(row[0]), int(row[1])


def movements(session: Session, sku: str, limit: int = 100) -> Sequence[StockMovement]:
    return session.scalars(
        select(StockMovement)
        .where(col(StockMovement.sku) == sku)
        .order_by(col(StockMovement.id).desc())
        .limit(limit)
    ).all()


def search(
    session: Session, text: str | None, *, after_sku: str | None = None, limit: int = 50
) -> Sequence[StockItem]:
    """Stock rows whose SKU contains `text` (any case), by SKU, after the cursor `after_sku`."""
    query = select(StockItem)
    if text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(col(StockItem.sku)).like(f"%{escaped}%", escape="\\"))
    if after_sku is not None:
        query = query.where(col(StockItem.sku) > after_sku)
    return session.scalars(query.order_by(col(StockItem.sku)).limit(limit)).all()


_STOCK = StockItem.__table__  # type: ignore[attr-defined]
_EXCLUDED = ConnectionSkuExclusion.__table__  # type: ignore[attr-defined]
_LISTING_VIEW = Prebuilt(
    select(
        (_STOCK.c.on_hand - _STOCK.c.reserved).label("available"),
        _EXCLUDED.c.connection,
    )
    .select_from(_STOCK.outerjoin(_EXCLUDED, _EXCLUDED.c.sku == _STOCK.c.sku))
    .where(_STOCK.c.sku == bindparam("sku"))
)
