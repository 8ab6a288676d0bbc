"""Loads every domain, so whatever registers itself at import is registered: job handlers and
their dead-job hooks and schedules, the state machine's entry effects, stock's units-freed hook.
Every process that runs the hub's work (API, worker, scheduler, CLI) builds its runtime through
`hub.wiring`, which imports this first."""

from hub.fulfilment import tasks as fulfilment_tasks
from hub.inbox import tasks as inbox_tasks
from hub.inventory import tasks as inventory_tasks
from hub.jobs import retention as job_retention
from hub.orders import effects
from hub.orders import tasks as order_tasks
from hub.reconcile import feeds as reconcile_feeds
from hub.reconcile import tasks as reconcile_tasks

__all__ = [
    "fulfilment_tasks",
    "inbox_tasks",
    "inventory_tasks",
    "job_retention",
    "order_tasks",
    "reconcile_feeds",
    "reconcile_tasks",
]

if effects.unhandled():
    raise RuntimeError(f"entry effects without a handler: {effects.unhandled()}")
