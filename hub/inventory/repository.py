"""All SQL about stock. Every number changes through a conditional UPDATE, never read-then-write,
so concurrent reservations cannot oversell on any backend."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from hub.db import insert_ignore
from hub.inventory.models import StockItem, StockMovement, StockReservation
from hub.types import utcnow


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


def set_on_hand(session: Session, sku: str, on_hand: int) -> tuple[int, bool]:
    """Set `on_hand` (creating the row); the old value, and False if it is below `reserved`."""
    current = session.get(StockItem, sku, with_for_update=True, populate_existing=True)
    if current is None:
        insert_ignore(
            session,
            StockItem,
            {"sku": sku, "on_hand": 0, "reserved": 0, "updated_at": utcnow()},
            ["sku"],
        )
        current = session.get(StockItem, sku, with_for_update=True, populate_existing=True)
        assert current is not None
    old = current.on_hand
    if on_hand < current.reserved:
        return old, False
    session.execute(
        update(StockItem)
        .where(col(StockItem.sku) == sku)
        .values(on_hand=on_hand, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return old, True


def reservations(session: Session, order_id: str) -> Sequence[StockReservation]:
    return session.scalars(
        select(StockReservation)
        .where(col(StockReservation.order_id) == order_id)
        .order_by(col(StockReservation.sku))
    ).all()


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
