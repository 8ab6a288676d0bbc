"""Who does the work that entering a state implies.

The state machine declares the effects of entering each state (`state_machines.order.ON_ENTER`);
the domain that owns each effect registers its handler here (orders releases stock, fulfilment
routes and cancels at the provider), and the orders service dispatches them in the transaction
of the transition, after its compare-and-set. An effect with no handler is an error, never a
silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlmodel import Session

from hub.orders.models import Order
from state_machines.order import ON_ENTER, Effect, OrderState

EffectHandler = Callable[[Session, Order, str], None]
# The same effect for several orders that entered the state together (a reconciliation page):
# optional, a domain registers one where it can do the work in fewer statements.
ManyHandler = Callable[[Session, Sequence[Order], str], None]

_HANDLERS: dict[Effect, EffectHandler] = {}
_MANY: dict[Effect, ManyHandler] = {}


def on_enter(effect: Effect) -> Callable[[EffectHandler], EffectHandler]:
    """Register the decorated function as the handler of `effect`."""

    def register(handler: EffectHandler) -> EffectHandler:
        if _HANDLERS.get(effect, handler) is not handler:
            raise ValueError(f"the {effect} effect has a handler already")
        _HANDLERS[effect] = handler
        return handler

    return register


def on_enter_many(effect: Effect) -> Callable[[ManyHandler], ManyHandler]:
    """Register the decorated function as the handler of `effect` for several orders at once;
    it must do what the single handler does for each of them."""

    def register(handler: ManyHandler) -> ManyHandler:
        if _MANY.get(effect, handler) is not handler:
            raise ValueError(f"the {effect} effect has a handler for many orders already")
        _MANY[effect] = handler
        return handler

    return register


def dispatch(session: Session, order: Order, entered: OrderState, source: str) -> None:
    for effect in ON_ENTER.get(entered, ()):
        handler = _HANDLERS.get(effect)
        if handler is None:
            raise RuntimeError(
                f"no handler for the {effect} effect of entering {entered}: "
                "import hub.tasks, which loads every domain"
            )
        handler(session, order, source)


def dispatch_many(
    session: Session, orders: Sequence[Order], entered: OrderState, source: str
) -> None:
    """`dispatch` for orders that entered `entered` together: an effect's handler for many
    orders where one is registered, else its single handler for each order in turn."""
    if not orders:
        return
    for effect in ON_ENTER.get(entered, ()):
        many = _MANY.get(effect)
        if many is not None:
            many(session, orders, source)
            continue
        handler = _HANDLERS.get(effect)
        if handler is None:
            raise RuntimeError(
                f"no handler for the {effect} effect of entering {entered}: "
                "import hub.tasks, which loads every domain"
            )
        for order in orders:
            handler(session, order, source)


def unhandled() -> list[Effect]:
    """Effects the machine declares that no domain handles (empty once every domain loaded)."""
    return sorted({e for effects in ON_ENTER.values() for e in effects} - set(_HANDLERS))
