"""All SQL about orders, their lines and their history."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, exists, func, or_, select, text, union_all, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, defer, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from connectors.registry import resolve, system_of
from hub.db import Prebuilt, from_row, one_of
from hub.orders.models import (
    Order,
    OrderCount,
    OrderCountChange,
    OrderEvent,
    OrderFlag,
    OrderLine,
)
from hub.types import utcnow


def get(session: Session, order_id: str, *, for_update: bool = False) -> Order | None:
    # The row is read again over the session's copy (populate_existing): changes to that copy
    # not yet written would be lost, so they are written first (inside `no_autoflush` too).
    session.flush()
    return session.get(Order, order_id, with_for_update=for_update, populate_existing=True)


def by_channel_id(session: Session, connection: str, channel_order_id: str) -> Order | None:
    """The order `channel_order_id` of the channel connection `connection`."""
    return session.scalars(
        select(Order).where(
            col(Order.connection) == connection, col(Order.channel_order_id) == channel_order_id
        )
    ).first()


# An order's JSON columns, loaded on first read (SQLModel types the columns as their values).
_JSON_DEFERRED = [
    defer(cast("QueryableAttribute[Any]", column))
    for column in (Order.shipping_address, Order.attributes)
]


def by_channel_ids(
    session: Session, connection: str, channel_order_ids: Sequence[str]
) -> dict[str, Order]:
    """The orders of `connection` among `channel_order_ids`, by channel order id: one look-up
    for a page of them.

    The address and attributes (JSON, decoded per row) are loaded when first read: comparing a
    page with what the hub holds reads neither, and decoding them was a third of the look-up."""
    if not channel_order_ids:
        return {}
    found = session.scalars(
        select(Order)
        .where(
            col(Order.connection) == connection,
            one_of(session, col(Order.channel_order_id), channel_order_ids),
        )
        .options(*_JSON_DEFERRED)
    )
    return {order.channel_order_id: order for order in found}


def states_by_channel_ids(
    session: Session, connection: str, channel_order_ids: Sequence[str]
) -> dict[str, tuple[str, str, bool]]:
    """(status, channel status, needs attention) of the orders of `connection` among
    `channel_order_ids`, by channel order id: enough to tell that a page's order needs no
    change, without building the order."""
    if not channel_order_ids:
        return {}
    found = session.execute(
        select(
            col(Order.channel_order_id),
            col(Order.status),
            col(Order.channel_status),
            col(Order.needs_attention),
        ).where(
            col(Order.connection) == connection,
            one_of(session, col(Order.channel_order_id), channel_order_ids),
        )
    )
    return {row[0]: (row[1], row[2], bool(row[3])) for row in found}


def insert_new(
    session: Session,
    orders: Sequence[dict[str, Any]],
    lines: Mapping[str, Sequence[dict[str, Any]]],
    history: Mapping[str, dict[str, Any]],
) -> list[Order]:
    """Insert those of `orders` (rows) whose (connection, channel_order_id) is new, with their
    `lines` and their `history` row (both by order id); the orders inserted, as `RETURNING`
    gave them.

    Three statements for any number of orders: a row another writer inserted first is left
    out by `ON CONFLICT DO NOTHING`, and so are its lines and history.
    """
    if not orders:
        return []
    connection = session.connection()
    if len(orders) == 1 and connection.dialect.name == "postgresql":
        return _insert_one(session, connection, orders[0], lines, history)
    statement = _insert_orders(session.get_bind().dialect.name)
    created = list(session.scalars(statement, list(orders)))
    new_lines = [line for order in created for line in lines.get(order.id, ())]
    if new_lines:
        session.execute(_INSERT_LINES, new_lines)
    if created:
        session.execute(_INSERT_HISTORY, [history[order.id] for order in created])
    return created


# One new order on Postgres (a webhook's), prebuilt: the order, its lines (from a JSON array)
# and its history row in one statement, all three only if the order is new.
_INSERT_ONE = Prebuilt(
    text(
        """
WITH new AS (
    INSERT INTO orders (
        id, channel, connection, channel_order_id, status, channel_status, currency,
        total_amount, buyer_email, shipping_address, attributes, placed_at, needs_attention,
        version, created_at, updated_at
    ) VALUES (
        :id, :channel, :connection, :channel_order_id, :status, :channel_status, :currency,
        :total_amount, :buyer_email, CAST(:shipping_address AS json), CAST(:attributes AS json),
        :placed_at, :needs_attention, :version, :created_at, :updated_at
    )
    ON CONFLICT (connection, channel_order_id) DO NOTHING
    RETURNING *
), lines AS (
    INSERT INTO order_lines (
        order_id, channel_line_id, sku, quantity, shipped_quantity, cancelled_quantity,
        unit_price, parcel_ref, attributes
    )
    SELECT new.id, l.channel_line_id, l.sku, l.quantity, 0, 0, l.unit_price, l.parcel_ref,
        l.attributes
    FROM new, ROWS FROM (
        json_to_recordset(CAST(:lines AS json)) AS (
            channel_line_id text, sku text, quantity integer, unit_price numeric,
            parcel_ref text, attributes json
        )
    ) WITH ORDINALITY AS l(channel_line_id, sku, quantity, unit_price, parcel_ref, attributes, n)
    ORDER BY l.n
), history AS (
    INSERT INTO order_events (order_id, trigger, from_state, to_state, source, detail, at)
    SELECT new.id, :trigger, NULL, new.status, :source, CAST('{}' AS json), :at FROM new
)
SELECT * FROM new
"""
    )
)


def _insert_one(
    session: Session,
    connection: Any,
    order: Mapping[str, Any],
    lines: Mapping[str, Sequence[dict[str, Any]]],
    history: Mapping[str, dict[str, Any]],
) -> list[Order]:
    row = {
        **order,
        "shipping_address": None
        if order["shipping_address"] is None
        else json.dumps(order["shipping_address"]),
        "attributes": json.dumps(order["attributes"]),
        "lines": json.dumps(
            [{**line, "unit_price": str(line["unit_price"])} for line in lines.get(order["id"], ())]
        ),
        "trigger": history[order["id"]]["trigger"],
        "source": history[order["id"]]["source"],
        "at": history[order["id"]]["at"],
    }
    created = _INSERT_ONE.rows(connection, row)
    if not created:
        return []
    new = from_row(Order, created[0])
    # Known to the session as the persistent row it is (no INSERT at the next flush), so a
    # later `get` of it in this transaction returns this very instance, as it did when the ORM
    # inserted it.
    make_transient_to_detached(new)
    session.add(new)
    return [new]


@functools.cache
def _insert_orders(dialect: str) -> Any:
    # Built once and given the rows at execution (an ORM bulk insert): with the rows inlined
    # by `.values()` SQLAlchemy compiled the statement afresh for every order received.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(Order)
        .on_conflict_do_nothing(index_elements=["connection", "channel_order_id"])
        .returning(Order)
    )


# Core inserts of the tables (not the ORM classes): rows given as dicts need none of the ORM's
# bulk bookkeeping.
_INSERT_LINES = sa_insert(OrderLine.__table__)  # type: ignore[attr-defined]
_INSERT_HISTORY = sa_insert(OrderEvent.__table__)  # type: ignore[attr-defined]


def snapshot(session: Session, order_id: str) -> tuple[Order, list[OrderLine]] | None:
    """The order and its lines (by id) as they stand, read with Core and built without the
    ORM's loading: for a job that reads them before a call out and changes nothing. They are
    attached to no session. None when there is no such order."""
    rows = _ORDER_BY_ID.rows(session.connection(), {"order_id": order_id})
    if not rows:
        return None
    return from_row(Order, rows[0]), line_snapshot(session, order_id)


def line_snapshot(session: Session, order_id: str) -> list[OrderLine]:
    """The order's lines as `lines` gives them, but read with Core into instances attached to
    no session: for reading only (nothing set on them is ever written)."""
    session.flush()  # lines changed in this session but not written yet are read as changed
    rows = _LINES_OF_ORDER.rows(session.connection(), {"order_id": order_id})
    return [from_row(OrderLine, row) for row in rows]


def set_routing(
    session: Session,
    order_id: str,
    provider: str | None,
    connection: str | None,
    ref: str | None,
    status: str,
    at: datetime,
    note: Mapping[str, Any] | None = None,
) -> str | None:
    """Set the order's fulfilment columns in one statement; the order's state once its row is
    locked (None when there is no such order). With `note` (a history row's `trigger`,
    `source` and JSON-ready `detail`) the order's history records it at `at`, in that state;
    on Postgres in the same statement."""
    values = {
        "order_id": order_id,
        "to_provider": provider,
        "to_connection": connection,
        "to_ref": ref,
        "to_status": status,
        "routed_at": at,
    }
    bind = session.connection()
    if note is not None and bind.dialect.name == "postgresql":
        noted = {**values, **note, "detail": json.dumps(note["detail"])}
        rows = _SET_ROUTING_NOTED.rows(bind, noted)
        return str(rows[0]["status"]) if rows else None
    rows = _SET_ROUTING.rows(bind, values)
    if not rows:
        return None
    found = str(rows[0]["status"])
    if note is not None:
        add_history(
            session,
            [{**note, "order_id": order_id, "from_state": found, "to_state": found, "at": at}],
        )
    return found


def by_channel_line_ids(session: Session, connection: str, line_ids: Sequence[str]) -> Order | None:
    """The order of `connection` holding any of `line_ids`, for events that name lines only."""
    if not line_ids:
        return None
    return session.scalars(
        select(Order)
        .join(OrderLine, col(OrderLine.order_id) == col(Order.id))
        .where(col(Order.connection) == connection, col(OrderLine.channel_line_id).in_(line_ids))
        .order_by(col(Order.id))
    ).first()


def by_fulfilment_ref(session: Session, connection: str, ref: str) -> Order | None:
    """The order the provider connection `connection` holds as `ref`."""
    return session.scalars(
        select(Order).where(
            col(Order.fulfilment_provider) == system_of(connection),
            col(Order.fulfilment_ref) == ref,
            col(Order.fulfilment_connection) == connection,
        )
    ).first()


def lines(session: Session, order_id: str) -> Sequence[OrderLine]:
    return session.scalars(
        select(OrderLine).where(col(OrderLine.order_id) == order_id).order_by(col(OrderLine.id))
    ).all()


def history(session: Session, order_id: str) -> Sequence[OrderEvent]:
    return session.scalars(
        select(OrderEvent).where(col(OrderEvent.order_id) == order_id).order_by(col(OrderEvent.id))
    ).all()


def lock(session: Session, order: Order) -> None:
    """Hold the order's row until the transaction ends and reload it, so changes that read
    the order's lines and then write them (a shipment) run one at a time per order."""
    session.execute(
        select(col(Order.id)).where(col(Order.id) == order.id).with_for_update()
    ).first()
    session.refresh(order)


def compare_and_set_status(session: Session, order: Order, expected: str, new: str) -> bool:
    """Move `order` from `expected` to `new` only if nobody changed it since it was read:
    the status and the version must both still be the ones this transaction saw."""
    now = utcnow()
    result = session.connection().execute(
        _COMPARE_AND_SET,
        {
            "order_id": order.id,
            "expected": expected,
            "seen_version": order.version,
            "new": new,
            "now": now,
        },
    )
    if result.rowcount != 1:
        return False
    _moved(order, new, now)
    return True


def transition(
    session: Session,
    order: Order,
    expected: str,
    new: str,
    history: Mapping[str, Any],
) -> bool:
    """`compare_and_set_status`, and if it moved the order, its history row (`add_history`'s
    columns but the order id and time, `detail` JSON-ready) with the same time. On Postgres
    both are one prebuilt statement."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        if not compare_and_set_status(session, order, expected, new):
            return False
        add_history(session, [{**history, "order_id": order.id, "at": order.updated_at}])
        return True
    now = utcnow()
    [row] = _TRANSITION.rows(
        connection,
        {
            "order_id": order.id,
            "expected": expected,
            "seen_version": order.version,
            "new": new,
            "now": now,
            "trigger": history["trigger"],
            "source": history["source"],
            "detail": json.dumps(history["detail"]),
        },
    )
    if row["moved"] != 1:
        return False
    _moved(order, new, now)
    return True


def _moved(order: Order, new: str, now: datetime) -> None:
    """Set the loaded copy of an order a compare-and-set just moved to what the statement made
    the row, as committed values (nothing left to flush), instead of reading the row back."""
    set_committed_value(order, "status", new)
    set_committed_value(order, "version", order.version + 1)
    set_committed_value(order, "updated_at", now)


_TRANSITION = Prebuilt(
    text(
        """
WITH moved AS (
    UPDATE orders SET status = :new, version = version + 1, updated_at = :now
    WHERE id = :order_id AND status = :expected AND version = :seen_version
    RETURNING id
), logged AS (
    INSERT INTO order_events (order_id, trigger, from_state, to_state, source, detail, at)
    SELECT id, :trigger, :expected, :new, :source, CAST(:detail AS json), :now FROM moved
)
SELECT count(*) AS moved FROM moved
"""
    )
)


# A Core UPDATE of the table, built once: the ORM-enabled `update(Order)` cost several times
# the statement's own time on every transition.
_ORDERS = Order.__table__  # type: ignore[attr-defined]
_COMPARE_AND_SET = (
    update(_ORDERS)
    .where(
        _ORDERS.c.id == bindparam("order_id"),
        _ORDERS.c.status == bindparam("expected"),
        _ORDERS.c.version == bindparam("seen_version"),
    )
    .values(status=bindparam("new"), version=_ORDERS.c.version + 1, updated_at=bindparam("now"))
)


_LINES = OrderLine.__table__  # type: ignore[attr-defined]
_ORDER_BY_ID = Prebuilt(select(_ORDERS).where(_ORDERS.c.id == bindparam("order_id")))
_LINES_OF_ORDER = Prebuilt(
    select(_LINES).where(_LINES.c.order_id == bindparam("order_id")).order_by(_LINES.c.id)
)

# The columns routing sets, each with the name of the value it takes (`set_routing`'s keys):
# one list for both statements below, so the noted one can never set a column the other does
# not, or miss one.
_ROUTING_COLUMNS = (
    ("fulfilment_provider", "to_provider"),
    ("fulfilment_connection", "to_connection"),
    ("fulfilment_ref", "to_ref"),
    ("fulfilment_status", "to_status"),
    ("fulfilment_checked_at", "routed_at"),
    ("updated_at", "routed_at"),
)
_SET_ROUTING = Prebuilt(
    _ORDERS.update()
    .where(_ORDERS.c.id == bindparam("order_id"))
    .values({column: bindparam(value) for column, value in _ROUTING_COLUMNS})
    .returning(_ORDERS.c.status)
)


# `_SET_ROUTING` and its history row as one statement (the route job's write, once per order).
_SET_ROUTING_NOTED = Prebuilt(
    text(
        "WITH routed AS ("
        " UPDATE orders SET "
        + ", ".join(f"{column} = :{value}" for column, value in _ROUTING_COLUMNS)
        + " WHERE id = :order_id RETURNING status"
        "), noted AS ("
        " INSERT INTO order_events (order_id, trigger, from_state, to_state, source, detail, at)"
        " SELECT :order_id, :trigger, status, status, :source, CAST(:detail AS json), :routed_at"
        " FROM routed"
        ") SELECT status FROM routed"
    )
)


def compare_and_set_many(
    session: Session, orders: Sequence[Order], expected: str, new: str
) -> bool:
    """`compare_and_set_status` for several orders at once, all or none: one UPDATE per
    version among them (a page of orders inserted together shares one). False, with nothing
    set on the loaded copies, when any of them changed; the caller's transaction is then to be
    rolled back, since the others moved."""
    now = utcnow()
    by_version: dict[int, list[str]] = {}
    for order in orders:
        by_version.setdefault(order.version, []).append(order.id)
    moved = 0
    for version, ids in by_version.items():
        result = session.execute(
            update(Order)
            .where(
                col(Order.id).in_(ids),
                col(Order.status) == expected,
                col(Order.version) == version,
            )
            .values(status=new, version=Order.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        moved += result.rowcount  # type: ignore[attr-defined]
    if moved != len(orders):
        return False
    for order in orders:
        _moved(order, new, now)
    return True


# One history row on Postgres, prebuilt: every transition and note writes one, and through
# SQLAlchemy the INSERT cost more client CPU than the database spent on it.
_HISTORY_ONE = Prebuilt(
    text(
        "INSERT INTO order_events (order_id, trigger, from_state, to_state, source, detail, at) "
        "VALUES (:order_id, :trigger, :from_state, :to_state, :source, CAST(:detail AS json), :at)"
    )
)


def add_history(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """History rows (`OrderEvent` columns but the id, `detail` JSON-ready) in one statement."""
    if not rows:
        return
    connection = session.connection()
    if len(rows) == 1 and connection.dialect.name == "postgresql":
        _HISTORY_ONE.rows(connection, {**rows[0], "detail": json.dumps(rows[0]["detail"])})
        return
    connection.execute(_INSERT_HISTORY, list(rows))


def search(
    session: Session,
    *,
    channel: str | None = None,
    connection: str | None = None,
    channel_order_id: str | None = None,
    status: str | None = None,
    needs_attention: bool | None = None,
    open_flag: str | None = None,
    sku: str | None = None,
    after_id: str | None = None,
    limit: int = 50,
) -> Sequence[Order]:
    """Orders newest first (ids sort by creation time), after the cursor `after_id`;
    `open_flag` keeps those with an open flag of that code."""
    query = select(Order)
    if channel:
        query = query.where(col(Order.channel) == channel)
    if connection:
        query = query.where(col(Order.connection) == resolve(connection))
    if channel_order_id:
        query = query.where(col(Order.channel_order_id) == channel_order_id)
    if status:
        query = query.where(col(Order.status) == status)
    if needs_attention is not None:
        query = query.where(col(Order.needs_attention) == needs_attention)
    if open_flag:
        query = query.where(
            exists().where(
                col(OrderFlag.order_id) == Order.id,
                col(OrderFlag.resolved_at).is_(None),
                col(OrderFlag.code) == open_flag,
            )
        )
    if sku:
        query = query.where(
            exists().where(col(OrderLine.order_id) == Order.id, col(OrderLine.sku) == sku)
        )
    if after_id:
        query = query.where(col(Order.id) < after_id)
    return session.scalars(query.order_by(col(Order.id).desc()).limit(limit)).all()


def counts(session: Session) -> list[tuple[str, str, bool, int]]:
    """(channel, status, needs_attention, orders) of every count the hub keeps: the folded
    counts plus the changes not folded yet, two small tables whatever the orders table holds."""
    both = union_all(
        select(
            col(OrderCount.channel),
            col(OrderCount.status),
            col(OrderCount.needs_attention),
            col(OrderCount.n).label("n"),
        ),
        select(
            col(OrderCountChange.channel),
            col(OrderCountChange.status),
            col(OrderCountChange.needs_attention),
            col(OrderCountChange.delta).label("n"),
        ),
    ).subquery()
    rows = session.execute(
        select(both.c.channel, both.c.status, both.c.needs_attention, func.sum(both.c.n))
        .group_by(both.c.channel, both.c.status, both.c.needs_attention)
        .order_by(both.c.channel, both.c.status, both.c.needs_attention)
    ).all()
    return [(str(c), str(s), bool(a), int(n)) for c, s, a, n in rows]


def counts_by_channel_and_status(session: Session) -> list[tuple[str, str, int]]:
    """(channel, status, orders), from the kept counts (`counts`)."""
    by_state: Counter[tuple[str, str]] = Counter()
    for channel, status, _, n in counts(session):
        by_state[(channel, status)] += n
    return [(c, s, n) for (c, s), n in sorted(by_state.items())]


def attention_count(session: Session) -> int:
    """How many orders need attention, from the kept counts (`counts`)."""
    return sum(n for _, _, attention, n in counts(session) if attention)


FOLD_BATCH = 10_000


def fold_count_changes(session: Session) -> int:
    """Move up to a batch of count changes into the counts; how many moved.

    The rows folded are exactly those the DELETE removed (`RETURNING`), so a change committed
    meanwhile is either folded here or left for the next fold, never lost or counted twice."""
    oldest = (
        select(col(OrderCountChange.id))
        .order_by(col(OrderCountChange.id))
        .limit(FOLD_BATCH)
        .scalar_subquery()
    )
    moved = session.execute(
        delete(OrderCountChange)
        .where(col(OrderCountChange.id).in_(oldest))
        .returning(
            col(OrderCountChange.channel),
            col(OrderCountChange.status),
            col(OrderCountChange.needs_attention),
            col(OrderCountChange.delta),
        )
        .execution_options(synchronize_session=False)
    ).all()
    totals: Counter[tuple[str, str, bool]] = Counter()
    for channel, status, attention, delta in moved:
        totals[(channel, status, bool(attention))] += delta
    changed = [
        {"channel": c, "status": s, "needs_attention": a, "n": n}
        for (c, s, a), n in sorted(totals.items())
        if n
    ]
    if changed:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        statement = insert(OrderCount).values(changed)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["channel", "status", "needs_attention"],
                set_={"n": col(OrderCount.n) + statement.excluded.n},
            )
        )
    return len(moved)


def stuck(session: Session, status: str, older_than: datetime) -> Sequence[Order]:
    """Orders that entered `status` before `older_than` and are not flagged yet.

    Time in the state counts from the transition into it in the history, not from
    `updated_at`, which notes, channel status updates and provider polls move on."""
    entered = (
        select(func.max(OrderEvent.at))
        .where(
            col(OrderEvent.order_id) == Order.id,
            col(OrderEvent.to_state) == status,
            or_(
                col(OrderEvent.from_state).is_(None),
                col(OrderEvent.from_state) != col(OrderEvent.to_state),
            ),
        )
        .scalar_subquery()
    )
    return session.scalars(
        select(Order).where(
            col(Order.status) == status,
            col(Order.needs_attention).is_(False),
            func.coalesce(entered, Order.updated_at) < older_than,
        )
    ).all()


def skus_of(session: Session, order_ids: Sequence[str]) -> set[str]:
    """The SKUs on the lines of `order_ids`: the SKUs alone, without building the lines."""
    if not order_ids:
        return set()
    found = session.scalars(
        select(col(OrderLine.sku))
        .where(one_of(session, col(OrderLine.order_id), order_ids))
        .distinct()
    )
    return {sku for sku in found if sku}


def lines_for(session: Session, order_ids: Sequence[str]) -> Sequence[OrderLine]:
    if not order_ids:
        return []
    return session.scalars(
        select(OrderLine).where(col(OrderLine.order_id).in_(order_ids)).order_by(col(OrderLine.id))
    ).all()


def flags(session: Session, order_id: str, *, open_only: bool = False) -> Sequence[OrderFlag]:
    """An order's flags, oldest first."""
    query = select(OrderFlag).where(col(OrderFlag.order_id) == order_id)
    if open_only:
        query = query.where(col(OrderFlag.resolved_at).is_(None))
    return session.scalars(query.order_by(col(OrderFlag.id))).all()


def flags_for(session: Session, order_ids: Sequence[str]) -> Sequence[OrderFlag]:
    """The open flags of several orders, oldest first."""
    if not order_ids:
        return []
    return session.scalars(
        select(OrderFlag)
        .where(col(OrderFlag.order_id).in_(order_ids), col(OrderFlag.resolved_at).is_(None))
        .order_by(col(OrderFlag.id))
    ).all()


def open_flags_raised_by(session: Session, order_id: str, source: str) -> Sequence[OrderFlag]:
    return session.scalars(
        select(OrderFlag).where(
            col(OrderFlag.order_id) == order_id,
            col(OrderFlag.source) == source,
            col(OrderFlag.resolved_at).is_(None),
        )
    ).all()
