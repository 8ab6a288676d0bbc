"""The order state machine: every order, from every channel, moves by these rules only.

One `transitions.Machine` is built at import. Orders are never added to it as models (that costs
~15 KiB and 0.4 ms per order, and `add_model` is quadratic); instead a single probe model is
set to a state, fired, and read back under a lock. Callbacks do no I/O: `transitions` does not
roll back a state when a callback fails, so the orders service persists the outcome itself with
a compare-and-set update.

The Machine's answer depends only on (state, trigger, all_lines_shipped): it has no callbacks
and its one guard reads that flag. So at import every one of those few combinations is fired
once and `next_state` looks the answer up: the Machine stays the single definition, and a
transition costs a dict lookup instead of ~25 us under a process-wide lock. A callback or a
guard with other inputs added to the Machine would have to replace the lookup with `_fire`.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

from transitions import Machine, MachineError


class OrderState(StrEnum):
    CREATED = "created"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Trigger(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONFIRM = "confirm"
    REJECT = "reject"
    SHIP = "ship"
    CANCEL = "cancel"


TERMINAL: frozenset[OrderState] = frozenset(
    {OrderState.COMPLETED, OrderState.REJECTED, OrderState.CANCELLED}
)

S = OrderState
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": Trigger.ACKNOWLEDGE, "source": [S.CREATED], "dest": S.ACKNOWLEDGED},
    {"trigger": Trigger.CONFIRM, "source": [S.CREATED, S.ACKNOWLEDGED], "dest": S.CONFIRMED},
    {"trigger": Trigger.REJECT, "source": [S.CREATED, S.ACKNOWLEDGED], "dest": S.REJECTED},
    {
        "trigger": Trigger.SHIP,
        "source": [S.CONFIRMED, S.PARTIALLY_FULFILLED],
        "dest": S.COMPLETED,
        "conditions": "all_lines_shipped",
    },
    {
        "trigger": Trigger.SHIP,
        "source": [S.CONFIRMED, S.PARTIALLY_FULFILLED],
        "dest": S.PARTIALLY_FULFILLED,
        "unless": "all_lines_shipped",
    },
    {
        "trigger": Trigger.CANCEL,
        "source": [S.CREATED, S.ACKNOWLEDGED, S.CONFIRMED, S.PARTIALLY_FULFILLED],
        "dest": S.CANCELLED,
    },
]


class IllegalTransition(Exception):
    """A trigger that the order's current state does not allow (the admin API answers 409)."""

    def __init__(self, state: str, trigger: str) -> None:
        super().__init__(f"cannot {trigger} an order that is {state}")
        self.state = state
        self.trigger = trigger


class _Probe:
    """The one model the machine drives; carries the guard's input for the current firing."""

    state: str

    def all_lines_shipped(self, event: Any) -> bool:
        return bool(event.kwargs.get("all_lines_shipped", False))


_probe = _Probe()
machine = Machine(
    model=_probe,
    states=[s.value for s in OrderState],
    # Plain strings: `transitions` would read an Enum member by its name ("CREATED").
    transitions=[
        {
            **t,
            "trigger": t["trigger"].value,
            "source": [s.value for s in t["source"]],
            "dest": t["dest"].value,
        }
        for t in TRANSITIONS
    ],
    initial=OrderState.CREATED.value,
    auto_transitions=False,
    send_event=True,
    model_override=False,
)
_lock = threading.Lock()


def _fire(state: str, trigger: str, all_lines_shipped: bool) -> OrderState | None:
    """Fire `trigger` from `state` on the Machine; None when it may not fire."""
    with _lock:
        try:
            machine.set_state(state, model=_probe)
            fired = _probe.trigger(trigger, all_lines_shipped=all_lines_shipped)  # type: ignore[attr-defined]
        except (MachineError, AttributeError, ValueError):
            return None
        return OrderState(_probe.state) if fired else None


# Every answer the Machine gives, keyed by plain strings (an Enum member is read by its value).
_ANSWERS: dict[tuple[str, str, bool], OrderState] = {
    (state.value, trigger.value, shipped): after
    for state in OrderState
    for trigger in Trigger
    for shipped in (False, True)
    if (after := _fire(state.value, trigger.value, shipped)) is not None
}


def next_state(state: str, trigger: str, *, all_lines_shipped: bool = False) -> OrderState:
    """The state `trigger` leads to from `state`, or `IllegalTransition`."""
    after = _ANSWERS.get((str(state), str(trigger), bool(all_lines_shipped)))
    if after is None:
        raise IllegalTransition(str(state), str(trigger))
    return after


def may(state: str, trigger: str) -> bool:
    """Whether `trigger` may fire from `state` (the ship guard only picks the destination)."""
    return (str(state), str(trigger), False) in _ANSWERS


def sources(trigger: str) -> frozenset[OrderState]:
    """Every state `trigger` may fire from."""
    return _SOURCES.get(str(trigger), frozenset())


_SOURCES: dict[str, frozenset[OrderState]] = {
    trigger.value: frozenset(OrderState(s) for s, t, _ in _ANSWERS if t == trigger.value)
    for trigger in Trigger
}


class Effect(StrEnum):
    """Work that entering a state implies. The orders service dispatches each one, in the
    transaction of the transition, to the handler its domain registered for it."""

    ROUTE = "route"  # send the order to a fulfilment provider
    RELEASE_STOCK = "release_stock"  # give back the units the order holds
    # Take the order back from its provider, if any, and give back its units once no provider
    # can ship them any more (at once when none holds the order).
    CANCEL_FULFILMENT = "cancel_fulfilment"


ON_ENTER: dict[OrderState, tuple[Effect, ...]] = {
    S.CONFIRMED: (Effect.ROUTE,),
    # No RELEASE_STOCK: a provider may have shipped the units already, so fulfilment releases
    # them only once no provider can ship them (a released unit handed to another order and
    # then shipped here too is an oversell).
    S.CANCELLED: (Effect.CANCEL_FULFILMENT,),
    S.REJECTED: (Effect.RELEASE_STOCK,),
}


def allowed_triggers(state: str) -> list[str]:
    """Triggers that may fire from `state` (for the admin API and tests)."""
    return sorted(machine.get_triggers(str(state)))


def describe() -> dict[str, Any]:
    """States and transitions as plain data, read from the Machine itself."""
    edges = []
    for name, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                guard = [str(c.func) for c in t.conditions]
                edges.append(
                    {
                        "trigger": name,
                        "source": source,
                        "dest": t.dest,
                        "guard": (
                            None
                            if not guard
                            else ("" if t.conditions[0].target else "not ") + guard[0]
                        ),
                    }
                )
    return {
        "states": list(machine.states),
        "initial": machine.initial,
        "terminal": sorted(TERMINAL),
        "transitions": edges,
    }
