"""slot_of: every process that fires for one moment must name the same slot, and that slot
must be the moment APScheduler fired for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.jobs.schedules import EPOCH, cron, interval, slot_key, slot_of, slots_within


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "now", "slot"),
    [
        ("0 3 * * *", utc(2026, 3, 10, 2, 59, 59), utc(2026, 3, 9, 3)),
        ("0 3 * * *", utc(2026, 3, 10, 3), utc(2026, 3, 10, 3)),
        ("0 3 * * *", utc(2026, 3, 10, 3, 0, 0, 500_000), utc(2026, 3, 10, 3)),
        ("0 3 * * *", utc(2026, 3, 10, 23, 59), utc(2026, 3, 10, 3)),
        ("*/15 * * * *", utc(2026, 3, 10, 12, 44, 59), utc(2026, 3, 10, 12, 30)),
        # Weekly and yearly crons fire less than once a day: the slot is days back (and a
        # crontab 1 is a Monday: 5 January 2026).
        ("0 3 * * 1", utc(2026, 1, 7, 12), utc(2026, 1, 5, 3)),
        ("0 0 1 1 *", utc(2026, 12, 31, 23, 59), utc(2026, 1, 1)),
        ("0 0 29 2 *", utc(2027, 3, 1), utc(2024, 2, 29)),
    ],
)
def test_a_cron_slot_is_its_latest_firing_at_or_before_now(
    expression: str, now: datetime, slot: datetime
) -> None:
    assert slot_of(cron(expression), now) == slot


@pytest.mark.parametrize(
    ("weekdays", "days"),
    [
        ("1", {"Mon"}),
        ("0", {"Sun"}),
        ("7", {"Sun"}),
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("1,3", {"Mon", "Wed"}),
        ("mon-wed", {"Mon", "Tue", "Wed"}),
        ("SUN", {"Sun"}),
        ("*", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
    ],
)
def test_cron_weekdays_mean_what_crontab_means(weekdays: str, days: set[str]) -> None:
    trigger = cron(f"0 3 * * {weekdays}")
    fire = trigger.get_next_fire_time(None, utc(2026, 3, 1))
    fired: set[str] = set()
    for _ in range(14):
        fired.add(fire.strftime("%a"))
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    assert fired == days


@pytest.mark.parametrize("expression", ["0 3 * *", "0 3 * * 8", "0 3 * * 5-1", "0 3 * * someday"])
def test_a_malformed_crontab_line_is_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        cron(expression)


def test_a_cron_that_never_fired_has_no_slot() -> None:
    with pytest.raises(ValueError, match="has not fired"):
        slot_of(cron("0 0 30 2 *"), utc(2026, 3, 1))


@pytest.mark.parametrize(
    ("seconds", "now", "slot"),
    [
        (900, utc(2026, 3, 10, 12, 14, 59, 999_999), utc(2026, 3, 10, 12)),
        (900, utc(2026, 3, 10, 12, 15), utc(2026, 3, 10, 12, 15)),
        (7, utc(2000, 1, 1, 0, 0, 13), utc(2000, 1, 1, 0, 0, 7)),
        (0.25, utc(2026, 3, 10, 12, 0, 0, 600_000), utc(2026, 3, 10, 12, 0, 0, 500_000)),
    ],
)
def test_an_interval_slot_is_aligned_to_fixed_wall_clock_steps(
    seconds: float, now: datetime, slot: datetime
) -> None:
    assert slot_of(interval(seconds), now) == slot


def test_slot_of_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        slot_of(interval(60), datetime(2026, 1, 1))


def test_the_slot_key_names_the_schedule_and_the_utc_slot() -> None:
    slot = slot_of(cron("0 3 * * *"), datetime(2026, 3, 10, 9, tzinfo=UTC))
    assert slot_key("reconcile:depop", slot) == "schedule:reconcile:depop:2026-03-10T03:00:00+00:00"


moments = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
crons = st.sampled_from(
    ["0 3 * * *", "*/5 * * * *", "17 */6 * * *", "0 3 * * 1", "30 2 1 * *", "0 0 1 1 *"]
)


@settings(max_examples=200, deadline=None)
@given(expression=crons, now=moments)
def test_a_cron_slot_is_a_firing_and_the_next_firing_is_after_now(
    expression: str, now: datetime
) -> None:
    trigger = cron(expression)
    slot = slot_of(trigger, now)
    assert slot <= now
    assert trigger.get_next_fire_time(None, slot) == slot
    assert trigger.get_next_fire_time(slot, slot + timedelta(microseconds=1)) > now


@settings(max_examples=200, deadline=None)
@given(expression=crons, now=moments)
def test_a_cron_firing_names_its_own_fire_time(expression: str, now: datetime) -> None:
    trigger = cron(expression)
    fire = trigger.get_next_fire_time(None, now)
    late = timedelta(seconds=1)
    assert slot_of(trigger, fire) == fire
    # A firing that runs a moment late (a busy process) still names the same slot.
    assert slot_of(trigger, fire + late) == fire


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(min_value=1, max_value=7 * 86_400), now=moments)
def test_an_interval_slot_is_aligned_and_holds_now(seconds: int, now: datetime) -> None:
    trigger = interval(seconds)
    slot = slot_of(trigger, now)
    step = timedelta(seconds=seconds)
    assert slot <= now < slot + step
    assert (slot - EPOCH) % step == timedelta(0)
    fire = trigger.get_next_fire_time(None, now)
    assert slot_of(trigger, fire) == fire


@pytest.mark.parametrize(
    ("trigger", "since", "now", "slots"),
    [
        (
            interval(900),
            utc(2026, 3, 10, 12, 0, 0, 1),
            utc(2026, 3, 10, 12, 45),
            [utc(2026, 3, 10, 12, 15), utc(2026, 3, 10, 12, 30), utc(2026, 3, 10, 12, 45)],
        ),
        (interval(900), utc(2026, 3, 10, 12), utc(2026, 3, 10, 12, 14), [utc(2026, 3, 10, 12)]),
        (interval(900), utc(2026, 3, 10, 12, 1), utc(2026, 3, 10, 12, 14), []),
        (
            cron("0 3 * * *"),
            utc(2026, 3, 7, 3),
            utc(2026, 3, 9, 2, 59),
            [utc(2026, 3, 7, 3), utc(2026, 3, 8, 3)],
        ),
        (
            cron("0 */6 * * *"),
            utc(2026, 3, 10, 0, 0, 1),
            utc(2026, 3, 10, 18),
            [utc(2026, 3, 10, 6), utc(2026, 3, 10, 12), utc(2026, 3, 10, 18)],
        ),
        (cron("0 0 30 2 *"), utc(2026, 1, 1), utc(2026, 3, 1), []),
    ],
)
def test_slots_within_lists_every_firing_in_the_span_oldest_first(
    trigger: Any, since: datetime, now: datetime, slots: list[datetime]
) -> None:
    assert slots_within(trigger, since, now) == slots


def test_slots_within_refuses_a_span_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="after"):
        slots_within(interval(60), utc(2026, 1, 2), utc(2026, 1, 1))


@settings(max_examples=200, deadline=None)
@given(
    expression=crons,
    now=moments,
    hours=st.integers(min_value=0, max_value=72),
)
def test_slots_within_are_the_slots_firings_name_and_miss_none(
    expression: str, now: datetime, hours: int
) -> None:
    trigger = cron(expression)
    since = now - timedelta(hours=hours)
    slots = slots_within(trigger, since, now)
    assert all(since <= s <= now for s in slots)
    assert all(slot_of(trigger, s) == s for s in slots)
    # No firing between two listed slots, nor between `since` and the first, nor after the last.
    edges = [since - timedelta(microseconds=1), *slots]
    for earlier, later in zip(edges, [*slots, None], strict=True):
        following = trigger.get_next_fire_time(None, earlier + timedelta(microseconds=1))
        if later is None:
            assert following > now
        else:
            assert following == later


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=86_400),
    now=moments,
    span=st.integers(min_value=0, max_value=3 * 86_400),
)
def test_interval_slots_within_are_every_aligned_step_in_the_span(
    seconds: int, now: datetime, span: int
) -> None:
    trigger = interval(seconds)
    since = now - timedelta(seconds=span)
    slots = slots_within(trigger, since, now)
    step = timedelta(seconds=seconds)
    assert all(slot_of(trigger, s) == s for s in slots)
    assert all(b - a == step for a, b in zip(slots, slots[1:], strict=False))
    if slots:
        assert slots[0] - step < since and slots[-1] == slot_of(trigger, now)
    else:
        assert slot_of(trigger, now) < since
