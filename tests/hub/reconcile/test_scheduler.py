"""Scheduler processes: one leads at a time through the lease row, and every run slot becomes
exactly one job, however many processes fire it and however the lease changes hands."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from hub.app import create_app
from hub.db import Database
from hub.jobs.models import Job, JobState
from hub.jobs.scheduler import MAX_CATCHUP_SLOTS, Scheduler
from hub.jobs.schedules import Schedule, cron, interval, slot_key, slot_of
from hub.jobs.worker import run_one, worker_name
from hub.orders.tasks import STUCK, STUCK_ORDERS
from hub.reconcile.models import ReconcileRun
from hub.reconcile.service import RUN
from hub.reconcile.tasks import reconcile_schedule_name
from hub.types import utcnow
from tests.harness import Hub, make_hub

INSTANCES = 4


@pytest.fixture
def pg_hub(postgres_database: Database) -> Iterator[Hub]:
    h = make_hub(postgres_database)
    yield h
    h.close()


def in_parallel(work: Callable[[int], None], n: int = INSTANCES) -> None:
    """Run work(0..n-1) in n threads at once; re-raise the first failure."""
    failures: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if failures:
        raise failures[0]


def slow(schedule: Schedule, up_to: float) -> Schedule:
    """The same schedule with an enqueue that dawdles, so leases run out mid-firing and two
    processes can both believe they lead."""

    def enqueue(session: Session, slot: datetime) -> None:
        time.sleep(random.uniform(0, up_to))
        schedule.enqueue(session, slot)

    return Schedule(schedule.name, schedule.trigger, enqueue)


def test_four_schedulers_queue_and_run_each_slot_exactly_once(pg_hub: Hub) -> None:
    runtime = pg_hub.runtime
    # The lease lapses within a firing, so leadership changes hands all the time.
    schedulers = [Scheduler(runtime, lease_ttl=0.005) for _ in range(INSTANCES)]
    wanted = {reconcile_schedule_name("depop"), STUCK_ORDERS}
    schedules = [slow(s, 0.01) for s in schedulers[0].schedules if s.name in wanted]
    assert len(schedules) == 2
    rounds = 24
    base = utcnow() - timedelta(days=rounds)
    slots = {
        s.name: [slot_of(s.trigger, base + timedelta(days=k)) for k in range(rounds)]
        for s in schedules
    }
    led: list[set[str]] = [set() for _ in range(rounds)]
    barrier = threading.Barrier(INSTANCES)

    def stepping_down(k: int) -> str | None:
        """Every sixth round one of the last leaders lets go and sits the round out, so the
        lease changes hands through a release as well as through expiry."""
        return min(led[k - 1]) if k % 6 == 5 else None

    def process(i: int) -> None:
        me = schedulers[i]
        for k in range(rounds):
            barrier.wait()
            if me.owner == stepping_down(k):
                me.stop()
                continue
            for schedule in schedules:
                if me.fire(schedule, slots[schedule.name][k]):
                    led[k].add(me.owner)

    in_parallel(process)

    assert all(led), "some round had no leader"
    for k in range(5, rounds, 6):
        assert min(led[k - 1]) not in led[k], f"round {k}: the one that let go still led"
    assert len(set().union(*led)) > 1
    with pg_hub.db.reader() as session:
        keys = Counter(session.scalars(select(col(Job.idempotency_key))).all())
        runs = session.scalar(select(func.count()).select_from(ReconcileRun))
    for schedule in schedules:
        kind_slots = [slot_key(schedule.name, slot) for slot in slots[schedule.name]]
        if schedule.name == STUCK_ORDERS:
            kind_slots = [slot_key(STUCK, slot) for slot in slots[schedule.name]]
        assert [keys[key] for key in kind_slots] == [1] * rounds, schedule.name
    assert runs == rounds, "a run row without its job, or a slot without its run"

    def work(_: int) -> None:
        name = worker_name()
        while run_one(runtime, name):
            pass

    in_parallel(work)

    with pg_hub.db.reader() as session:
        jobs = session.scalars(select(Job).where(col(Job.kind).in_([RUN, STUCK]))).all()
        states = {r.state for r in session.scalars(select(ReconcileRun)).all()}
    assert len(jobs) == 2 * rounds
    assert {(j.state, j.attempts) for j in jobs} == {(JobState.DONE.value, 1)}
    assert states == {"done"}
    # Each slot's run read Depop once: no run happened twice.
    assert len(pg_hub.depop.calls_to("GET", "/api/v1/orders/")) == rounds


def test_one_of_many_leads_until_it_lets_go_or_its_lease_lapses(pg_hub: Hub) -> None:
    runtime = pg_hub.runtime
    schedulers = [Scheduler(runtime, schedules=[], lease_ttl=30) for _ in range(INSTANCES)]

    def contend(contenders: list[int]) -> list[int]:
        """Every contender tries to lead ten times at once; the indexes of those that did."""
        results: dict[int, list[bool]] = {i: [] for i in contenders}
        barrier = threading.Barrier(len(contenders))

        def attempt(n: int) -> None:
            for _ in range(10):
                barrier.wait()
                results[contenders[n]].append(schedulers[contenders[n]].try_lead())

        in_parallel(attempt, len(contenders))
        leaders = [i for i, got in results.items() if any(got)]
        assert len(leaders) == 1, results
        assert all(results[leaders[0]]), "the leader lost the lease it kept renewing"
        return leaders

    [first] = contend(list(range(INSTANCES)))

    schedulers[first].stop()
    [second] = contend([i for i in range(INSTANCES) if i != first])

    # A leader that stops renewing (a process that died) loses the lease once it lapses.
    brief = Scheduler(runtime, schedules=[], lease_ttl=0.2)
    schedulers[second].stop()
    assert brief.try_lead()
    assert not schedulers[first].try_lead()
    time.sleep(0.3)
    assert schedulers[first].try_lead()
    assert not brief.try_lead()


def test_a_follower_does_not_queue_a_slot(hub: Hub) -> None:
    leader = Scheduler(hub.runtime)
    follower = Scheduler(hub.runtime)
    stuck = next(s for s in leader.schedules if s.name == STUCK_ORDERS)
    assert leader.try_lead()

    assert not follower.fire(stuck, slot_of(stuck.trigger, utcnow()))

    assert hub.admin("GET", "/admin/jobs", params={"kind": STUCK}).json()["data"] == []
    assert leader.fire(stuck, slot_of(stuck.trigger, utcnow()))
    assert len(hub.admin("GET", "/admin/jobs", params={"kind": STUCK}).json()["data"]) == 1


def test_the_embedded_scheduler_starts_and_stops_with_the_app(hub: Hub) -> None:
    other = Scheduler(hub.runtime, schedules=[])
    hub.depop.add_product("SOCK-1", quantity=1)
    hub.set_stock("SOCK-1", 1)
    app = create_app(hub.runtime, worker=True, scheduler=True)

    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert not other.try_lead(), "the embedded scheduler took the lease as it started"
        assert any(t.name == "APScheduler" and t.is_alive() for t in threading.enumerate())
        purchase_id = hub.depop.purchase("SOCK-1")
        # The embedded worker runs beside it: the order goes through without a drain.
        deadline = time.monotonic() + 30
        while [o["status"] for o in hub.orders(channel_order_id=purchase_id)] != ["confirmed"]:
            assert time.monotonic() < deadline, "the embedded worker never ran the order"
            time.sleep(0.02)

    assert other.try_lead(), "the lease was handed back at shutdown"
    alive = [t.name for t in threading.enumerate() if t.is_alive()]
    assert "APScheduler" not in alive
    assert not [name for name in alive if name.startswith("hub-worker")]


class Clock:
    """A clock every scheduler of a test reads, moved by the test alone."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _runs_for(db: Database, slot: datetime) -> int:
    key = slot_key(reconcile_schedule_name("depop"), slot)
    with db.reader() as session:
        return len(session.scalars(select(Job).where(col(Job.idempotency_key) == key)).all())


def test_a_follower_catches_up_the_slot_a_crashed_leader_missed_exactly_once(
    pg_hub: Hub,
) -> None:
    runtime = pg_hub.runtime
    slot = datetime.fromisoformat("2026-11-20T03:00:00+00:00")
    clock = Clock(slot - timedelta(seconds=1))
    daily = [s for s in Scheduler(runtime).schedules if s.name == reconcile_schedule_name("depop")]
    leader, follower = (
        Scheduler(runtime, schedules=daily, lease_ttl=10, catchup=6 * 3600, clock=clock)
        for _ in range(2)
    )
    assert leader.heartbeat()
    assert not follower.heartbeat()
    # The leader dies a second before 03:00: it neither fires nor renews nor lets go.
    clock.advance(5)
    assert not follower.heartbeat(), "the follower took a lease that had not lapsed"
    assert _runs_for(pg_hub.db, slot) == 0
    clock.advance(6)  # one lease after the leader's last renewal

    assert follower.heartbeat()
    assert _runs_for(pg_hub.db, slot) == 1

    # The old leader comes back, and every heartbeat after, both at once, queues nothing more.
    def beat(i: int) -> None:
        (leader, follower)[i].heartbeat()

    for _ in range(5):
        clock.advance(1)
        in_parallel(beat, 2)
    assert not leader.heartbeat()
    assert follower.fire(daily[0], slot)
    assert _runs_for(pg_hub.db, slot) == 1


def test_a_slot_older_than_the_catch_up_window_is_not_run(pg_hub: Hub) -> None:
    runtime = pg_hub.runtime
    slot = datetime.fromisoformat("2026-11-20T03:00:00+00:00")
    clock = Clock(slot + timedelta(hours=2, seconds=1))
    daily = [s for s in Scheduler(runtime).schedules if s.name == reconcile_schedule_name("depop")]
    late = Scheduler(runtime, schedules=daily, catchup=2 * 3600, clock=clock)

    assert late.heartbeat()
    assert _runs_for(pg_hub.db, slot) == 0


def _stuck_scans(hub: Hub) -> list[str]:
    """The idempotency keys of the queued stuck-order scans, as the admin API lists them."""
    jobs = hub.admin("GET", "/admin/jobs", params={"kind": STUCK, "limit": 500}).json()["data"]
    with hub.db.reader() as session:
        ids = [job["id"] for job in jobs]
        return sorted(
            session.scalars(select(col(Job.idempotency_key)).where(col(Job.id).in_(ids))).all()
        )


def _stuck_keys(*times: str) -> list[str]:
    return sorted(
        slot_key(STUCK, datetime.fromisoformat(f"2026-11-20T{t}:00+00:00")) for t in times
    )


def test_a_leader_back_after_three_missed_slots_queues_each_of_them_once(hub: Hub) -> None:
    runtime = hub.runtime
    assert runtime.settings.maintenance_interval_seconds == 900
    clock = Clock(datetime.fromisoformat("2026-11-20T02:00:01+00:00"))
    stuck = [s for s in Scheduler(runtime).schedules if s.name == STUCK_ORDERS]
    leader = Scheduler(runtime, schedules=stuck, lease_ttl=10, catchup=3600, clock=clock)
    # The first scheduler of a new database missed nothing: the latest slot only.
    assert leader.heartbeat()
    assert _stuck_scans(hub) == _stuck_keys("02:00")

    # The leader is down across the 02:15, 02:30 and 02:45 slots, then comes back.
    clock.advance(45 * 60)
    assert leader.heartbeat()

    assert _stuck_scans(hub) == _stuck_keys("02:00", "02:15", "02:30", "02:45")
    # A second catch-up, by the same leader or by a new one that remembers nothing, adds none.
    assert leader.heartbeat()
    leader.stop()
    successor = Scheduler(runtime, schedules=stuck, lease_ttl=10, catchup=3600, clock=clock)
    assert successor.heartbeat()
    assert len(_stuck_scans(hub)) == 4
    hub.drain()
    jobs = hub.admin("GET", "/admin/jobs", params={"kind": STUCK}).json()["data"]
    assert sorted((j["state"], j["attempts"]) for j in jobs) == [("done", 1)] * 4


def test_a_follower_taking_over_queues_every_slot_since_the_leader_last_renewed(
    hub: Hub,
) -> None:
    runtime = hub.runtime
    clock = Clock(datetime.fromisoformat("2026-11-20T01:40:01+00:00"))
    stuck = [s for s in Scheduler(runtime).schedules if s.name == STUCK_ORDERS]
    leader, follower = (
        Scheduler(runtime, schedules=stuck, lease_ttl=10, catchup=6 * 3600, clock=clock)
        for _ in range(2)
    )
    assert leader.heartbeat()
    assert not follower.heartbeat()
    # The leader dies; an hour later the follower's heartbeat finds the lease lapsed.
    clock.advance(3600)

    assert follower.heartbeat()

    assert _stuck_scans(hub) == _stuck_keys("01:30", "01:45", "02:00", "02:15", "02:30")


def test_a_firing_that_takes_the_lease_over_leaves_the_gap_to_the_next_heartbeat(
    hub: Hub,
) -> None:
    runtime = hub.runtime
    clock = Clock(datetime.fromisoformat("2026-11-20T01:40:01+00:00"))
    stuck = [s for s in Scheduler(runtime).schedules if s.name == STUCK_ORDERS]
    leader, follower = (
        Scheduler(runtime, schedules=stuck, lease_ttl=10, catchup=6 * 3600, clock=clock)
        for _ in range(2)
    )
    assert leader.heartbeat()
    clock.advance(3600)  # the leader died; the follower's scheduler fires before it beats
    assert follower.fire(stuck[0], datetime.fromisoformat("2026-11-20T02:30:00+00:00"))
    assert _stuck_scans(hub) == _stuck_keys("01:30", "02:30")

    clock.advance(3)
    assert follower.heartbeat()

    assert _stuck_scans(hub) == _stuck_keys("01:30", "01:45", "02:00", "02:15", "02:30")


def test_the_first_scheduler_of_a_new_database_queues_each_latest_slot_only(hub: Hub) -> None:
    queued: list[datetime] = []
    each_minute = Schedule("each-minute", cron("* * * * *"), lambda _s, slot: queued.append(slot))
    clock = Clock(datetime.fromisoformat("2026-11-20T03:00:30+00:00"))
    first = Scheduler(hub.runtime, schedules=[each_minute], catchup=6 * 3600, clock=clock)

    assert first.heartbeat()

    assert queued == [datetime.fromisoformat("2026-11-20T03:00:00+00:00")]


def test_two_schedulers_catching_up_at_once_queue_each_missed_slot_once(pg_hub: Hub) -> None:
    runtime = pg_hub.runtime
    clock = Clock(datetime.fromisoformat("2026-11-20T01:40:01+00:00"))
    stuck = [s for s in Scheduler(runtime).schedules if s.name == STUCK_ORDERS]
    assert Scheduler(runtime, schedules=stuck, lease_ttl=10, catchup=3600, clock=clock).heartbeat()
    clock.advance(3600)  # that leader died an hour ago
    # A lease that has lapsed as soon as it is taken: both believe they lead, and neither
    # remembers what the other queued.
    racers = [
        Scheduler(
            runtime, schedules=[slow(stuck[0], 0.01)], lease_ttl=-1, catchup=3600, clock=clock
        )
        for _ in range(2)
    ]
    led: list[bool] = []

    def beat(i: int) -> None:
        led.append(racers[i].heartbeat())

    in_parallel(beat, 2)
    in_parallel(beat, 2)

    assert led == [True] * 4
    assert _stuck_scans(pg_hub) == _stuck_keys("01:30", "01:45", "02:00", "02:15", "02:30")


def test_a_window_far_longer_than_the_interval_queues_its_newest_slots_only(hub: Hub) -> None:
    queued: list[datetime] = []
    every_second = Schedule("every-second", interval(1), lambda _session, slot: queued.append(slot))
    clock = Clock(datetime.fromisoformat("2026-11-20T02:00:00+00:00"))
    leader, successor = (
        Scheduler(hub.runtime, schedules=[every_second], catchup=3600, clock=clock)
        for _ in range(2)
    )
    assert leader.heartbeat()
    assert queued == [clock.now]
    clock.advance(3600)  # the leader died an hour ago

    assert successor.heartbeat()

    caught_up = queued[1:]
    assert len(caught_up) == MAX_CATCHUP_SLOTS
    assert caught_up[-1] == clock.now
    assert caught_up == sorted(caught_up) and len(set(caught_up)) == len(caught_up)
    # The next heartbeat, 3 s on, queues the slots since the last (that one again: a no-op
    # under its key).
    clock.advance(3)
    assert successor.heartbeat()
    assert queued[1 + MAX_CATCHUP_SLOTS :] == [
        clock.now - timedelta(seconds=s) for s in (3, 2, 1, 0)
    ]


def test_letting_go_of_a_lapsed_lease_does_not_lengthen_it(hub: Hub) -> None:
    start = datetime.fromisoformat("2026-11-20T02:00:00+00:00")
    leader_clock, follower_clock = Clock(start), Clock(start)
    leader = Scheduler(hub.runtime, schedules=[], lease_ttl=10, clock=leader_clock)
    follower = Scheduler(hub.runtime, schedules=[], lease_ttl=10, clock=follower_clock)
    assert leader.try_lead()
    # The lease lapsed at 02:00:10; the leader stops at 02:00:20 by its clock, while the
    # follower, whose clock reads 02:00:15, is about to take it.
    leader_clock.advance(20)
    follower_clock.advance(15)

    leader.stop()

    assert follower.try_lead()
