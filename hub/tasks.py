"""Imports every module that registers job handlers, so a worker knows every kind."""

from hub.fulfilment import tasks as fulfilment_tasks
from hub.inbox import tasks as inbox_tasks
from hub.inventory import tasks as inventory_tasks
from hub.orders import tasks as order_tasks
from hub.reconcile import tasks as reconcile_tasks

__all__ = ["fulfilment_tasks", "inbox_tasks", "inventory_tasks", "order_tasks", "reconcile_tasks"]
