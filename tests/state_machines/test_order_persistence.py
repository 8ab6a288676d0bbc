"""Random trigger sequences applied through the orders service on the real database: whatever
the sequence, the persisted order only ever moved by legal transitions, never left a terminal
state, and its history replays to the state it is in."""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session

from hub.db import Database
from hub.orders import repository as repo
from hub.orders import service
from hub.orders.models import Order
from state_machines.order import (
    TERMINAL,
    IllegalTransition,
    OrderState,
    Trigger,
    allowed_triggers,
    next_state,
)
from tests.fake_channel import order_json, to_order

TRIGGERS = st.sampled_from(list(Trigger))


def _reachable_from_created() -> set[str]:
    """Every state some sequence of legal transitions leads to, by breadth-first search."""
    seen = {OrderState.CREATED.value}
    todo = deque(seen)
    while todo:
        state = todo.popleft()
        for trigger in allowed_triggers(state):
            for shipped in (False, True):
                try:
                    after = next_state(state, trigger, all_lines_shipped=shipped).value
                except IllegalTransition:
                    continue
                if after not in seen:
                    seen.add(after)
                    todo.append(after)
    return seen


REACHABLE = _reachable_from_created()


def _load(session: Session, order_id: str) -> Order:
    order = repo.get(session, order_id)
    assert order is not None
    return order


def run_random_trigger_sequences(database: Database) -> None:
    class OrderLifecycle(RuleBasedStateMachine):
        """One fresh order per example; each step is one trigger in its own transaction."""

        order_id: str
        expected: str
        stale: Order | None
        serial = 0

        @initialize()
        def receive_an_order(self) -> None:
            OrderLifecycle.serial += 1
            incoming = to_order(order_json(f"sm-{OrderLifecycle.serial}", ("SKU-SM", 2)))
            with database.transaction() as session:
                order, created = service.receive(session, incoming, "test")
            assert created
            self.order_id = order.id
            self.expected = OrderState.CREATED.value
            self.stale = None

        @rule(trigger=TRIGGERS, all_lines_shipped=st.booleans())
        def fire(self, trigger: Trigger, all_lines_shipped: bool) -> None:
            try:
                with database.transaction() as session:
                    order = _load(session, self.order_id)
                    snapshot = Order(**order.model_dump())
                    after = service.fire(
                        session, order, trigger, "test", all_lines_shipped=all_lines_shipped
                    )
            except IllegalTransition:
                assert trigger.value not in allowed_triggers(self.expected)
                return
            assert trigger.value in allowed_triggers(self.expected)
            assert self.expected not in TERMINAL, f"left terminal state {self.expected}"
            self.expected = after.value
            self.stale = snapshot

        @rule(trigger=TRIGGERS)
        def a_writer_holding_an_old_copy_changes_nothing(self, trigger: Trigger) -> None:
            """Compare-and-set: a trigger fired on a copy read before the last transition
            must not land, whether or not it would be legal from the copy's state. (A ship
            that stayed in partially_fulfilled left the status as the copy has it: the
            compare-and-set is on the status, so such a copy is not stale.)"""
            if self.stale is None or self.stale.status == self.expected:
                return
            with database.transaction() as session:
                before = len(repo.history(session, self.order_id))
            try:
                with database.transaction() as session:
                    service.fire(session, self.stale, trigger, "stale", all_lines_shipped=True)
            except (IllegalTransition, service.StaleOrder):
                pass
            else:
                raise AssertionError(f"{trigger} landed on an order read as {self.stale.status}")
            with database.reader() as session:
                assert _load(session, self.order_id).status == self.expected
                assert len(repo.history(session, self.order_id)) == before

        @invariant()
        def persisted_state_is_the_expected_and_reachable_one(self) -> None:
            with database.reader() as session:
                status = _load(session, self.order_id).status
            assert status == self.expected
            assert status in REACHABLE

        @invariant()
        def history_replays_to_the_current_state(self) -> None:
            with database.reader() as session:
                status = _load(session, self.order_id).status
                events = repo.history(session, self.order_id)
            assert events[0].trigger == "receive"
            assert events[0].to_state == OrderState.CREATED.value
            state = OrderState.CREATED.value
            for event in events[1:]:
                assert event.from_state == state, f"history skips from {state}"
                if event.from_state == event.to_state and event.trigger not in set(Trigger):
                    continue  # a note or a flag, not a transition
                assert state not in TERMINAL, f"history leaves terminal state {state}"
                # The ship guard's input is not part of the trigger: the destination says it.
                replayed = next_state(
                    state,
                    event.trigger,
                    all_lines_shipped=event.to_state == OrderState.COMPLETED.value,
                )
                assert replayed.value == event.to_state
                state = replayed.value
            assert state == status

    run_state_machine_as_test(
        OrderLifecycle,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_random_trigger_sequences_keep_persisted_orders_legal(database: Database) -> None:
    run_random_trigger_sequences(database)
