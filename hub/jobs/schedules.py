"""When scheduled work runs: triggers (crontab lines, fixed intervals), the run slot a firing
belongs to, and the schedules domains declare beside their job handlers.

Nothing here knows what a schedule does: a `Schedule` only enqueues its slot's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# How far back slot_of looks for a cron trigger's last firing before giving up: a cron that
# has not fired in this long (30 February) has no slot.
_LONGEST_LOOKBACK = timedelta(days=366 * 8)
_MICROSECOND = timedelta(microseconds=1)

Trigger: TypeAlias = CronTrigger | IntervalTrigger


# Crontab's day-of-week numbers: 0 and 7 are Sunday.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron(expression: str, timezone: str = "UTC") -> CronTrigger:
    """A trigger from a standard five-field crontab line.

    Not `CronTrigger.from_crontab`: APScheduler 3 reads a numeric day of week as 0 = Monday
    where crontab means 0 = Sunday (its issue 286, fixed only in 4.x), so `0 3 * * 1` would run
    on Tuesdays. The day-of-week field is spelled out as day names first, which both read alike.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, not {len(fields)}: {expression!r}")
    minute, hour, day, month, weekdays = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_names(weekdays),
        timezone=timezone,
    )


def _day_names(field: str) -> str:
    if field == "*":
        return "*"
    names: list[str] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, _, high = span.partition("-")
            first, last = _day_number(low), _day_number(high)
        else:
            first = _day_number(span)
            last = 6 if step else first
        if first > last:
            raise ValueError(f"day-of-week range {part!r} runs backwards")
        for number in range(first, last + 1, int(step) if step else 1):
            if _CRON_DAYS[number] not in names:
                names.append(_CRON_DAYS[number])
    return ",".join(names)


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"not a day of the week: {token!r}")


def interval(seconds: float) -> IntervalTrigger:
    """An interval trigger aligned to fixed wall-clock slots, the same in every process."""
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)


def slot_of(trigger: Trigger, now: datetime) -> datetime:
    """The run slot `now` belongs to: the trigger's latest fire time at or before `now`, in UTC.

    A firing computes it from its own clock just after the fire time, so every process that
    fires for the same moment names the same slot, which is what makes the slot key unique.
    Raises ValueError when the trigger has not fired by `now`.
    """
    if now.tzinfo is None:
        raise ValueError("slot_of needs an aware datetime")
    if isinstance(trigger, IntervalTrigger):
        start: datetime = trigger.start_date
        if now < start:
            raise ValueError(f"the interval starts at {start.isoformat()}, after {now}")
        # Whole microseconds, not float seconds, so the same slot comes out in every process.
        step: int = trigger.interval // _MICROSECOND
        elapsed = (now - start) // _MICROSECOND
        return (start + _MICROSECOND * (elapsed - elapsed % step)).astimezone(UTC)
    # Look back over a doubling span until it holds a fire time, then walk forward to the last
    # one not after `now`: a few steps for any cron, whether it fires each minute or yearly.
    span = timedelta(minutes=1)
    while span <= _LONGEST_LOOKBACK:
        fire: datetime | None = trigger.get_next_fire_time(None, now - span)
        if fire is None:
            break  # it never fires from `now - span` on, so not before `now` either
        if fire <= now:
            while True:
                following: datetime | None = trigger.get_next_fire_time(fire, fire + _MICROSECOND)
                if following is None or following > now:
                    return fire.astimezone(UTC)
                fire = following
        span *= 2
    raise ValueError(f"the trigger {trigger} has not fired before {now.isoformat()}")


def slots_within(trigger: Trigger, since: datetime, now: datetime) -> list[datetime]:
    """Every run slot of `trigger` from `since` to `now`, both included, oldest first: each
    the slot `slot_of` names for a firing at that moment, so every process lists the same.

    Raises ValueError when `since` is after `now` or either is naive.
    """
    if since.tzinfo is None or now.tzinfo is None:
        raise ValueError("slots_within needs aware datetimes")
    if since > now:
        raise ValueError(f"the span starts at {since.isoformat()}, after {now.isoformat()}")
    try:
        last = slot_of(trigger, now)
    except ValueError:
        return []  # it has not fired by `now`, so not in the span either
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval // _MICROSECOND * _MICROSECOND
        slots: list[datetime] = []
        slot = last
        while slot >= since and slot >= trigger.start_date:
            slots.append(slot)
            slot -= step
        slots.reverse()
        return slots
    found: list[datetime] = []
    fire: datetime | None = trigger.get_next_fire_time(None, since)
    while fire is not None and fire <= last:
        found.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire + _MICROSECOND)
    return found


Enqueue = Callable[[Session, datetime], None]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named job that runs on `trigger`; `enqueue(session, slot)` queues that slot's run."""

    name: str
    trigger: Trigger
    enqueue: Enqueue


def slot_key(name: str, slot: datetime) -> str:
    """The idempotency key of one schedule's run slot: the same in every process."""
    return f"schedule:{name}:{slot.isoformat()}"
