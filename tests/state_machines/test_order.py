"""The order state machine against the architecture's table, written out here independently so
that a change to the Machine that the table does not allow fails a test."""

from __future__ import annotations

import itertools

import pytest

from state_machines.order import (
    TERMINAL,
    IllegalTransition,
    OrderState,
    Trigger,
    _fire,
    allowed_triggers,
    describe,
    next_state,
)

S = OrderState
T = Trigger

# (state, trigger, all_lines_shipped) -> next state; every combination not listed is illegal.
TABLE: dict[tuple[OrderState, Trigger, bool], OrderState] = {}
for shipped in (False, True):
    TABLE[(S.CREATED, T.ACKNOWLEDGE, shipped)] = S.ACKNOWLEDGED
    for source in (S.CREATED, S.ACKNOWLEDGED):
        TABLE[(source, T.CONFIRM, shipped)] = S.CONFIRMED
        TABLE[(source, T.REJECT, shipped)] = S.REJECTED
    for source in (S.CONFIRMED, S.PARTIALLY_FULFILLED):
        TABLE[(source, T.SHIP, shipped)] = S.COMPLETED if shipped else S.PARTIALLY_FULFILLED
    for source in (S.CREATED, S.ACKNOWLEDGED, S.CONFIRMED, S.PARTIALLY_FULFILLED):
        TABLE[(source, T.CANCEL, shipped)] = S.CANCELLED

EVERY_CASE = list(itertools.product(OrderState, Trigger, (False, True)))


@pytest.mark.parametrize(("state", "trigger", "shipped"), EVERY_CASE)
def test_each_state_and_trigger_goes_where_the_table_says_or_is_illegal(
    state: OrderState, trigger: Trigger, shipped: bool
) -> None:
    expected = TABLE.get((state, trigger, shipped))
    if expected is None:
        with pytest.raises(IllegalTransition) as raised:
            next_state(state, trigger, all_lines_shipped=shipped)
        assert (raised.value.state, raised.value.trigger) == (state, trigger)
    else:
        assert next_state(state, trigger, all_lines_shipped=shipped) is expected


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_allow_no_trigger(state: OrderState) -> None:
    assert allowed_triggers(state) == []
    for trigger in Trigger:
        with pytest.raises(IllegalTransition):
            next_state(state, trigger, all_lines_shipped=True)


def test_terminal_states_are_completed_rejected_and_cancelled() -> None:
    assert {S.COMPLETED, S.REJECTED, S.CANCELLED} == TERMINAL


@pytest.mark.parametrize("state", list(OrderState))
def test_allowed_triggers_are_exactly_those_the_table_lets_fire(state: OrderState) -> None:
    expected = sorted({t.value for (s, t, _), _to in TABLE.items() if s is state})
    assert allowed_triggers(state) == expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [("created", "explode"), ("shipped", "ship"), ("", "confirm"), ("created", "")],
)
def test_unknown_states_and_triggers_are_illegal_transitions(state: str, trigger: str) -> None:
    with pytest.raises(IllegalTransition):
        next_state(state, trigger)


def test_a_failed_firing_leaves_the_shared_machine_usable() -> None:
    with pytest.raises(IllegalTransition):
        next_state(S.COMPLETED, T.CANCEL)
    assert next_state(S.CREATED, T.ACKNOWLEDGE) is S.ACKNOWLEDGED
    assert next_state(S.ACKNOWLEDGED, T.CONFIRM) is S.CONFIRMED


def test_describe_lists_every_transition_of_the_table_and_nothing_else() -> None:
    described = describe()
    assert described["initial"] == "created"
    assert set(described["states"]) == {s.value for s in OrderState}
    assert set(described["terminal"]) == {s.value for s in TERMINAL}
    edges = {(e["trigger"], e["source"], e["dest"]) for e in described["transitions"]}
    assert edges == {(t.value, s.value, to.value) for (s, t, _), to in TABLE.items()}
    guards = {
        e["dest"]: e["guard"] for e in described["transitions"] if e["trigger"] == T.SHIP.value
    }
    assert guards == {
        "completed": "all_lines_shipped",
        "partially_fulfilled": "not all_lines_shipped",
    }


@pytest.mark.parametrize(("state", "trigger", "shipped"), EVERY_CASE)
def test_next_state_answers_what_firing_the_machine_answers(
    state: OrderState, trigger: Trigger, shipped: bool
) -> None:
    fired = _fire(state.value, trigger.value, shipped)
    if fired is None:
        with pytest.raises(IllegalTransition):
            next_state(state, trigger, all_lines_shipped=shipped)
    else:
        assert next_state(state.value, trigger.value, all_lines_shipped=shipped) is fired
