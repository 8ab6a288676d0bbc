"""The ledger a drill ends with: what the simulators saw and what the hub's database holds,
and the claims that must hold between them whatever was injected."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

# The claims, by name: a drill reports each one as held or broken, with what broke it.
WEBHOOKS_ONCE = "every accepted webhook stored and processed once"
ORDER_ONCE = "one hub order per channel order"
PROVIDER_ONCE = "one provider order per channel order"
PARCEL_ONCE = "each parcel pushed to the channel once"
STOCK = "stock never below zero and equal to the movement log"
NO_OVERSELL = "no more units shipped than were counted"
JOBS = "no job left running"
CLAIMS = (WEBHOOKS_ONCE, ORDER_ONCE, PROVIDER_ONCE, PARCEL_ONCE, STOCK, NO_OVERSELL, JOBS)


@dataclass
class Ledger:
    """Figures, and for each claim the problems found (none: it held)."""

    figures: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CLAIMS})

    def broken(self, claim: str, problem: str) -> None:
        self.problems[claim].append(problem)

    def held(self, claim: str) -> bool:
        return not self.problems[claim]


@dataclass
class Observed:
    """What the simulators recorded, fetched from their control routes."""

    webhooks: dict[str, list[dict[str, Any]]]  # simulator -> every delivery attempt
    deliverr_orders: list[dict[str, Any]]
    depop_parcels: dict[str, dict[str, dict[str, str]]]  # purchase -> parcel -> tracking
    depop_calls: list[tuple[str, str, int]]
    placed: list[str]  # Depop purchase ids the buyers made
    initial_stock: dict[str, int]


def audit(engine: sa.Engine, seen: Observed) -> Ledger:
    ledger = Ledger()
    with engine.connect() as conn:
        _webhooks(conn, seen, ledger)
        orders = _orders(conn, seen, ledger)
        _provider(seen, orders, ledger)
        _parcels(conn, seen, orders, ledger)
        _stock(conn, seen, ledger)
        _jobs(conn, ledger)
    return ledger


def _webhooks(conn: sa.Connection, seen: Observed, ledger: Ledger) -> None:
    stored: dict[tuple[str, str], list[tuple[int, str, str | None]]] = defaultdict(list)
    rows = conn.execute(sa.text("SELECT id, channel, body, status, error FROM inbound_events"))
    for event_id, channel, body, status, error in rows:
        digest = hashlib.sha256(bytes(body)).hexdigest()
        stored[(channel, digest)].append((event_id, status, error))
    attempts = accepted = 0
    for channel, deliveries in seen.webhooks.items():
        attempts += len(deliveries)
        ok = {d["sha256"] for d in deliveries if d["status"] is not None and d["status"] < 300}
        accepted += len(ok)
        for digest in ok:
            found = stored.get((channel, digest), [])
            if len(found) != 1:
                problem = f"{channel} webhook {digest[:12]}: stored {len(found)} times"
                ledger.broken(WEBHOOKS_ONCE, problem)
                continue
            event_id, status, error = found[0]
            if status not in ("processed", "ignored"):
                ledger.broken(
                    WEBHOOKS_ONCE, f"{channel} event {event_id} is {status}: {error or ''}"[:200]
                )
    # A job that finished its work twice: two successful attempts of one inbox job.
    twice = conn.execute(
        sa.text(
            "SELECT j.id, count(*) FROM jobs j JOIN job_attempts a ON a.job_id = j.id "
            "WHERE j.kind = 'inbox.process' AND a.outcome = 'ok' GROUP BY j.id HAVING count(*) > 1"
        )
    ).all()
    for job_id, count in twice:
        ledger.broken(WEBHOOKS_ONCE, f"inbox job {job_id} succeeded {count} times")
    statuses = Counter(s for found in stored.values() for _, s, _ in found)
    ledger.figures["webhook deliveries (attempts, incl. duplicates and retries)"] = attempts
    ledger.figures["distinct webhooks accepted"] = accepted
    ledger.figures["inbound events by status"] = dict(statuses)


def _orders(conn: sa.Connection, seen: Observed, ledger: Ledger) -> dict[str, dict[str, Any]]:
    """The hub's orders by id."""
    orders: dict[str, dict[str, Any]] = {}
    by_channel: dict[tuple[str, str], list[str]] = defaultdict(list)
    rows = conn.execute(
        sa.text(
            "SELECT id, channel, channel_order_id, status, fulfilment_ref, needs_attention, "
            "attention_reason FROM orders"
        )
    ).mappings()
    for row in rows:
        orders[row["id"]] = dict(row)
        by_channel[(row["channel"], row["channel_order_id"])].append(row["id"])
    for key, ids in by_channel.items():
        if len(ids) > 1:
            ledger.broken(ORDER_ONCE, f"{key[0]} order {key[1]}: {len(ids)} hub orders")
    missing = [p for p in seen.placed if ("depop", p) not in by_channel]
    for purchase in missing[:20]:
        ledger.broken(ORDER_ONCE, f"depop purchase {purchase}: no hub order")
    if len(missing) > 20:
        ledger.broken(ORDER_ONCE, f"... and {len(missing) - 20} more purchases with no order")
    ledger.figures["orders placed at the channel"] = len(seen.placed)
    ledger.figures["hub orders by status"] = dict(Counter(o["status"] for o in orders.values()))
    ledger.figures["hub orders flagged, by reason"] = dict(
        Counter((o["attention_reason"] or "")[:80] for o in orders.values() if o["needs_attention"])
    )
    return orders


def _provider(seen: Observed, orders: dict[str, dict[str, Any]], ledger: Ledger) -> None:
    per_order = Counter(o["externalOrderId"] for o in seen.deliverr_orders)
    for hub_id, count in per_order.items():
        if count > 1:
            ledger.broken(PROVIDER_ONCE, f"hub order {hub_id}: {count} Deliverr orders")
    for order in seen.deliverr_orders:
        hub = orders.get(order["externalOrderId"])
        if hub is None:
            ledger.broken(PROVIDER_ONCE, f"Deliverr order {order['orderId']}: no hub order")
        elif hub["fulfilment_ref"] != order["orderId"]:
            ledger.broken(
                PROVIDER_ONCE,
                f"Deliverr order {order['orderId']}: hub order {hub['id']} knows "
                f"{hub['fulfilment_ref']!r} (an orphan the hub will never follow)",
            )
    ledger.figures["Deliverr orders"] = len(seen.deliverr_orders)
    ledger.figures["Deliverr orders by status"] = dict(
        Counter(o["status"] for o in seen.deliverr_orders)
    )


def _parcels(
    conn: sa.Connection, seen: Observed, orders: dict[str, dict[str, Any]], ledger: Ledger
) -> None:
    shipped = 0
    for order in seen.deliverr_orders:
        hub = orders.get(order["externalOrderId"])
        if hub is None or not order["shipments"]:
            continue
        shipped += len(order["shipments"])
        at_depop = seen.depop_parcels.get(hub["channel_order_id"], {})
        tracking = sorted(n for p in at_depop.values() for n in p["tracking_number"].split(","))
        sent = sorted(s["trackingNumber"] for s in order["shipments"])
        if tracking != sent:
            ledger.broken(
                PARCEL_ONCE,
                f"depop purchase {hub['channel_order_id']}: Deliverr shipped {sent}, "
                f"Depop holds {tracking}",
            )
    pushes = Counter(path for method, path, status in seen.depop_calls if "mark-as-shipped" in path)
    accepted = Counter(
        path
        for method, path, status in seen.depop_calls
        if "mark-as-shipped" in path and status < 300
    )
    for path, count in accepted.items():
        if count > 1:
            ledger.broken(PARCEL_ONCE, f"{path}: accepted {count} times")
    unpushed = conn.execute(
        sa.text("SELECT count(*) FROM shipments WHERE pushed_to_channel_at IS NULL")
    ).scalar_one()
    if unpushed:
        ledger.broken(PARCEL_ONCE, f"{unpushed} shipments never pushed to the channel")
    ledger.figures["parcels shipped by Deliverr"] = shipped
    ledger.figures["mark-as-shipped calls (accepted / all)"] = (
        f"{sum(accepted.values())} / {sum(pushes.values())}"
    )


def _stock(conn: sa.Connection, seen: Observed, ledger: Ledger) -> None:
    items = {
        sku: (on_hand, reserved)
        for sku, on_hand, reserved in conn.execute(
            sa.text("SELECT sku, on_hand, reserved FROM stock_items")
        )
    }
    logged = {
        sku: (int(on_hand), int(reserved))
        for sku, on_hand, reserved in conn.execute(
            sa.text(
                "SELECT sku, sum(on_hand_delta), sum(reserved_delta) FROM stock_movements "
                "GROUP BY sku"
            )
        )
    }
    held: dict[str, int] = dict(
        conn.execute(
            sa.text("SELECT sku, sum(quantity) FROM stock_reservations GROUP BY sku")
        ).all()
    )
    for sku, (on_hand, reserved) in sorted(items.items()):
        if on_hand < 0 or reserved < 0 or reserved > on_hand:
            ledger.broken(STOCK, f"{sku}: on_hand {on_hand}, reserved {reserved}")
        if logged.get(sku, (0, 0)) != (on_hand, reserved):
            ledger.broken(
                STOCK, f"{sku}: figures {(on_hand, reserved)}, movement log {logged.get(sku)}"
            )
        if int(held.get(sku) or 0) != reserved:
            ledger.broken(STOCK, f"{sku}: reserved {reserved}, reservations hold {held.get(sku)}")
    shipped: Counter[str] = Counter()
    for order in seen.deliverr_orders:
        for shipment in order["shipments"]:
            for item in shipment["shippedItems"]:
                shipped[item["externalProductId"]] += int(item["quantity"])
    for sku, counted in seen.initial_stock.items():
        if shipped[sku] > counted:
            ledger.broken(NO_OVERSELL, f"{sku}: {shipped[sku]} units shipped of {counted}")
        on_hand = items.get(sku, (0, 0))[0]
        if on_hand != counted - shipped[sku]:
            ledger.broken(
                NO_OVERSELL,
                f"{sku}: counted {counted}, shipped {shipped[sku]}, hub says on hand {on_hand}",
            )
    ledger.figures["units counted / shipped"] = (
        f"{sum(seen.initial_stock.values())} / {sum(shipped.values())}"
    )


def _jobs(conn: sa.Connection, ledger: Ledger) -> None:
    by_state = sa.text("SELECT state, count(*) FROM jobs GROUP BY state")
    states: dict[str, int] = dict(conn.execute(by_state).all())
    running = conn.execute(
        sa.text("SELECT id, kind, lease_owner FROM jobs WHERE state = 'running' LIMIT 20")
    ).all()
    for job_id, kind, owner in running:
        ledger.broken(JOBS, f"job {job_id} ({kind}) still running under {owner}")
    attempts: dict[str, int] = dict(
        conn.execute(sa.text("SELECT outcome, count(*) FROM job_attempts GROUP BY outcome")).all()
    )
    dead = conn.execute(
        sa.text(
            "SELECT kind, count(*), max(last_error) FROM jobs WHERE state = 'dead' GROUP BY kind"
        )
    ).all()
    ledger.figures["jobs by state"] = states
    ledger.figures["job attempts by outcome"] = attempts
    ledger.figures["dead jobs by kind (last error)"] = {
        kind: f"{count} ({(error or '')[:160]})" for kind, count, error in dead
    }
