"""Job kinds about one order, each with the one function that builds its keys.

A key is `order:{order id}:{action}[:{qualifier}...]`: unique per order and action, so a second
enqueue of the same step is a no-op, and a qualifier (a shipment, a retry's version) makes a
deliberate repeat a new job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from hub.jobs import queue
from hub.orders.models import Order


@dataclass(frozen=True, slots=True)
class OrderJob:
    kind: str
    action: str

    def key(self, order_id: str, *qualifiers: object) -> str:
        return ":".join(["order", order_id, self.action, *(str(q) for q in qualifiers)])

    def enqueue(
        self,
        session: Session,
        order_id: str,
        payload: dict[str, Any] | None = None,
        *qualifiers: object,
        run_at: datetime | None = None,
    ) -> bool:
        """Queue this step for `order_id` unless it is queued (or done) already."""
        # The order is in the session already wherever a step is queued: no statement.
        order = session.get(Order, order_id)
        return queue.enqueue(
            session,
            self.kind,
            self.key(order_id, *qualifiers),
            payload,
            order_id=order_id,
            connection=order.connection if order is not None else None,
            run_at=run_at,
        )

    def enqueue_many(self, session: Session, orders: Sequence[Order]) -> set[str]:
        """Queue this step, with no payload, for each of `orders` not holding it yet, in one
        statement; the keys queued now."""
        keyed = {self.key(order.id): order for order in orders}
        return queue.enqueue_many(
            session,
            self.kind,
            [(key, {}) for key in keyed],
            owners={key: (order.id, order.connection) for key, order in keyed.items()},
        )


ACKNOWLEDGE = OrderJob("order.acknowledge", "acknowledge")
ACCEPT = OrderJob("order.accept", "accept")
REJECT = OrderJob("order.reject", "reject")
