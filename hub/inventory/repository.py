"""All SQL about stock. Every number changes through a conditional UPDATE, never read-then-write,
so concurrent reservations cannot oversell on any backend."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from hub.inventory.models import StockItem, StockMovement, StockReservation
from hub.types import utcnow

CHUNK = 1000  # SKUs per statement: well inside every backend's limit on bound parameters


def get(session: Session, sku: str, *, for_update: bool = False) -> StockItem | None:
    return session.get(StockItem, sku, with_for_update=for_update, populate_existing=True)


def take(session: Session, sku: str, quantity: int) -> bool:
    """Reserve `quantity` of `sku` if that many are available; rowcount says whether it did."""
    result = session.execute(
        update(StockItem)
        .where(
            col(StockItem.sku) == sku,
            col(StockItem.on_hand) - col(StockItem.reserved) >= quantity,
        )
        .values(reserved=StockItem.reserved + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    for start in range(0, len(skus), CHUNK):
        rows = [
            {"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": now}
            for sku in skus[start : start + CHUNK]
        ]
        session.execute(
            insert(StockItem).values(rows).on_conflict_do_nothing(index_elements=["sku"])
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
