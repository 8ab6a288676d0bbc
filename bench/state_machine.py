"""What the order state machine costs: microseconds per transition through `next_state`, and
bytes per order, against the alternatives the architecture rules out (a Machine per order,
`add_model` per order). Targets: under 50 us per transition, under 1 KiB per order.

Run alone with `python -m bench.state_machine`, or with every benchmark via `python -m bench`.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from transitions import Machine

from state_machines.order import TRANSITIONS, IllegalTransition, OrderState, _fire, next_state

# One order's whole life, the legal transitions the hub fires most.
LIFE: list[tuple[str, str, bool]] = [
    ("created", "acknowledge", False),
    ("acknowledged", "confirm", False),
    ("confirmed", "ship", False),
    ("partially_fulfilled", "ship", True),
    ("created", "cancel", False),
    ("acknowledged", "reject", False),
]
TRANSITIONS_TIMED = 60_000
ORDERS = 20_000
MACHINES = 300


class _Order:
    """The smallest order record: the hub keeps an order's state as a string, nothing more."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = OrderState.CREATED.value


def _plain_transitions() -> list[dict[str, Any]]:
    return [
        {
            **t,
            "trigger": t["trigger"].value,
            "source": [s.value for s in t["source"]],
            "dest": t["dest"].value,
        }
        for t in TRANSITIONS
    ]


class _Model:
    def all_lines_shipped(self, event: Any) -> bool:
        return bool(event.kwargs.get("all_lines_shipped", False))


def _machine_for(model: Any) -> Machine:
    return Machine(
        model=model,
        states=[s.value for s in OrderState],
        transitions=_plain_transitions(),
        initial=OrderState.CREATED.value,
        auto_transitions=False,
        send_event=True,
    )


def us_per_transition(n: int = TRANSITIONS_TIMED) -> tuple[float, float]:
    """Wall-clock and CPU microseconds per legal transition. On a shared machine the wall
    figure includes time other processes took; the CPU figure is this process's own work."""
    steps = [LIFE[i % len(LIFE)] for i in range(n)]
    wall, cpu = time.perf_counter(), time.process_time()
    for state, trigger, shipped in steps:
        next_state(state, trigger, all_lines_shipped=shipped)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def us_per_machine_firing(n: int = TRANSITIONS_TIMED // 4) -> float:
    """CPU microseconds per firing of the shared Machine itself (what `next_state` looks up)."""
    steps = [LIFE[i % len(LIFE)] for i in range(n)]
    started = time.process_time()
    for state, trigger, shipped in steps:
        _fire(state, trigger, shipped)
    return (time.process_time() - started) / n * 1e6


def us_per_illegal_trigger(n: int = TRANSITIONS_TIMED // 4) -> float:
    started = time.process_time()
    for _ in range(n):
        try:
            next_state("completed", "cancel")
        except IllegalTransition:
            pass
    return (time.process_time() - started) / n * 1e6


def _retained_bytes(build: Callable[[], object], count: int) -> float:
    """Bytes still allocated per item after `build()` made `count` of them (kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        kept = build()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / count


def bytes_per_order_shared_machine(count: int = ORDERS) -> float:
    """What driving orders through the one shared Machine adds to each order record.

    The orders are made before measuring; what is measured is their whole life through
    `next_state`, so the figure is the machine's overhead per order and nothing else.
    """
    orders = [_Order() for _ in range(count)]

    def drive() -> list[_Order]:
        for order in orders:
            for _state, trigger, shipped in LIFE[:4]:
                order.status = next_state(order.status, trigger, all_lines_shipped=shipped).value
        return orders

    return _retained_bytes(drive, count)


def bytes_per_order_own_machine(count: int = MACHINES) -> float:
    return _retained_bytes(lambda: [_machine_for(_Model()) for _ in range(count)], count)


def bytes_per_order_add_model(count: int = MACHINES) -> float:
    def build() -> tuple[Machine, list[_Model]]:
        machine = _machine_for(None)
        models = [_Model() for _ in range(count)]
        for model in models:
            machine.add_model(model)
        return machine, models

    return _retained_bytes(build, count)


def us_per_order_own_machine(count: int = MACHINES) -> float:
    started = time.process_time()
    for _ in range(count):
        _machine_for(_Model())
    return (time.process_time() - started) / count * 1e6


def run() -> list[dict[str, object]]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    wall, cpu = us_per_transition()
    per_order = bytes_per_order_shared_machine()
    return [
        {
            "case": "next_state, legal transition (CPU)",
            "value": round(cpu, 2),
            "unit": "us",
            "target": "< 50",
            "met": cpu < 50,
        },
        {
            "case": "next_state, legal transition (wall)",
            "value": round(wall, 2),
            "unit": "us",
            "target": "< 50",
            "met": wall < 50,
        },
        {
            "case": "next_state, illegal trigger (CPU)",
            "value": round(us_per_illegal_trigger(), 2),
            "unit": "us",
        },
        {
            "case": "firing the shared Machine itself (CPU)",
            "value": round(us_per_machine_firing(), 2),
            "unit": "us",
        },
        {
            "case": "shared Machine: retained per order, whole life",
            "value": round(per_order, 1),
            "unit": "B",
            "target": "< 1024",
            "met": per_order < 1024,
        },
        {
            "case": "ruled out: a Machine per order",
            "value": round(bytes_per_order_own_machine()),
            "unit": "B",
        },
        {
            "case": "ruled out: a Machine per order, build (CPU)",
            "value": round(us_per_order_own_machine(), 1),
            "unit": "us",
        },
        {
            "case": "ruled out: add_model per order",
            "value": round(bytes_per_order_add_model()),
            "unit": "B",
        },
    ]


if __name__ == "__main__":
    from bench.__main__ import print_table

    print_table([{"bench": "state_machine", **row} for row in run()])
