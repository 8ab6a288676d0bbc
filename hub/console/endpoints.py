"""The console's pages: HTML rendered on the server from the same repositories the admin API
reads, and forms that POST each change (with its CSRF token) through `actions`."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlmodel import Session

from connectors.connector import Role
from connectors.registry import resolve as resolve_key
from connectors.registry import system_of
from hub import audit
from hub.admin.diagram import state_machine_svg
from hub.admin.orders import detail as order_detail
from hub.connections import repository as connections_repo
from hub.connections import service as connections
from hub.connections import signin
from hub.connections.signin_endpoints import callback_url, set_binding
from hub.console import actions, charts, csvio
from hub.console import repository as console_repo
from hub.console.session import (
    FLASH_COOKIE,
    ConsoleSession,
    SessionDep,
    WriterDep,
    clear_cookie,
    flash,
    issue,
    set_cookie,
)
from hub.deps import Actor, ReaderDep, RuntimeDep, fingerprint, identify
from hub.errors import DomainError
from hub.fulfilment import repository as fulfilment_repo
from hub.inbox import repository as inbox_repo
from hub.inbox.models import DeliveryOutcome, InboundStatus
from hub.inventory import repository as stock_repo
from hub.jobs import queue
from hub.jobs.models import JobState
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.orders.schemas import OrderDetail
from hub.reconcile import repository as reconcile_repo
from hub.runtime import Runtime
from hub.types import utcnow
from state_machines.order import IllegalTransition, OrderState, Trigger, describe, may

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

PAGE = 50
NAV = [
    ("overview", "/console", "Overview"),
    ("orders", "/console/orders", "Orders"),
    ("jobs", "/console/jobs", "Jobs"),
    ("stock", "/console/stock", "Stock"),
    ("webhooks", "/console/webhooks", "Webhooks"),
    ("reconcile", "/console/reconcile", "Reconciliation"),
    ("connections", "/console/connections", "Connections"),
    ("audit", "/console/audit", "Audit"),
]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = max(0, int((utcnow() - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _age(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if whole >= size:
            return f"{whole // size} {unit}"
    return f"{whole} s"


def _web_url(value: str | None) -> str:
    """A link only when it is http(s): a tracking URL comes from outside, and a `javascript:`
    one must never become a link an operator clicks."""
    return value if value and value.lower().startswith(("https://", "http://")) else ""


templates.env.filters["when"] = _when
templates.env.filters["web_url"] = _web_url
templates.env.filters["ago"] = _ago
templates.env.filters["age"] = _age


def render(
    request: Request,
    session: ConsoleSession | None,
    template: str,
    *,
    section: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    message = request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "actor": session.actor if session else None,
            "csrf": session.csrf if session else "",
            "nav": NAV,
            "section": section,
            "flash": unquote(message) if message else None,
            **context,
        },
        status_code=status_code,
    )
    if message:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def back(request: Request, to: str, message: str) -> RedirectResponse:
    """After a POST: to `to` (a console path), with `message` shown there once."""
    response = RedirectResponse(to, status_code=303)
    flash(response, request, message)
    return response


def attempt(request: Request, to: str, change: Callable[[], Any], done: str) -> RedirectResponse:
    """Make a change; back to `to` saying `done`, or why it could not be made."""
    try:
        change()
    except (DomainError, IllegalTransition, actions.ActionRefused, ValueError) as exc:
        return back(request, to, f"Not done: {exc}")
    return back(request, to, done)


def connection_keys(reader: Session, runtime: Runtime, role: Role | None = None) -> list[str]:
    """The connections a page filters by: every one stored (disabled ones too, their orders
    stay) and those wired in this process, of `role` if given."""
    keys = set(runtime.connectors.channel_keys()) if role != Role.PROVIDER else set()
    if role != Role.CHANNEL:
        keys |= set(runtime.connectors.provider_keys())
    for row in connections_repo.everything(reader):
        try:
            if role is None or connections.connector_of(row.system).role == role:
                keys.add(row.key)
        except connections.ConnectionInvalid:
            continue  # a system this version no longer has
    return sorted(keys)


def _reason(text: str) -> str:
    return text.strip()[:500]


# -- signing in -------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, None, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console",
) -> Response:
    actor = identify(runtime.settings, token)
    if actor is None:
        return render(
            request,
            None,
            "login.html",
            next=_safe_next(next),
            error="That token is not one of HUB_ADMIN_TOKENS or HUB_ADMIN_READ_TOKENS.",
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, issue(runtime.settings, fingerprint(runtime.settings, token)))
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    response = RedirectResponse("/console/login", status_code=303)
    clear_cookie(response)
    return response


# -- overview ---------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request, session: SessionDep, reader: ReaderDep, runtime: RuntimeDep
) -> HTMLResponse:
    now = utcnow()
    by_channel: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, state, n in orders_repo.counts_by_channel_and_status(reader):
        by_channel[channel][state] = n
    jobs: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, state, n in queue.counts_by_kind_and_state(reader):
        jobs[kind][state] = n
    overdue = dict(queue.oldest_due_by_kind(reader))
    webhooks: dict[str, dict[str, dict[str, int]]] = {}
    for window, since in (("hour", now - timedelta(hours=1)), ("day", now - timedelta(days=1))):
        for (channel, outcome), n in inbox_repo.delivery_counts(reader, since).items():
            webhooks.setdefault(channel, {}).setdefault(window, {})[outcome] = n
    enabled = sorted({system_of(key) for key in runtime.connectors.channel_keys()})
    channels = sorted(set(enabled) | set(by_channel))
    last_runs = {
        channel: next(iter(reconcile_repo.recent(reader, channel=channel, limit=1)), None)
        for channel in enabled
    }
    hours = console_repo.hourly_moments(now)
    per_hour = console_repo.orders_per_hour(reader, hours[0])
    order_points = [
        (h.strftime("%H:00"), per_hour.get(h.strftime("%Y-%m-%d %H"), 0)) for h in hours[:-1]
    ]
    depth = console_repo.queue_depth_at(reader, hours)
    depth_points = [(h.strftime("%H:00"), n) for h, n in zip(hours[:-1], depth[:-1], strict=True)]
    depth_points.append(("now", depth[-1]))
    return render(
        request,
        session,
        "overview.html",
        section="overview",
        states=[s.value for s in OrderState],
        channels=channels,
        by_channel=by_channel,
        attention=console_repo.attention(reader),
        attention_total=orders_repo.attention_count(reader),
        jobs=dict(sorted(jobs.items())),
        job_states=[s.value for s in JobState],
        overdue=overdue,
        dead_total=sum(states.get(JobState.DEAD.value, 0) for states in jobs.values()),
        webhooks=webhooks,
        last_runs=last_runs,
        orders_chart=Markup(
            charts.bar_chart("Orders received per hour, last 24 hours", order_points)
        ),
        depth_chart=Markup(
            charts.bar_chart("Jobs waiting or running, hourly over the last 24 hours", depth_points)
        ),
    )


# -- orders -----------------------------------------------------------------------------------


def _parse_day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


def _filter(
    actor: Actor,
    channel: str | None,
    connection: str | None,
    channel_order_id: str | None,
    status: str | None,
    attention: str | None,
    sku: str | None,
    buyer: str | None,
    placed_from: str | None,
    placed_to: str | None,
) -> console_repo.OrderFilter:
    until = _parse_day(placed_to)
    return console_repo.OrderFilter(
        channel=channel or None,
        connection=resolve_key(connection) if connection else None,
        channel_order_id=(channel_order_id or "").strip() or None,
        status=status if status in {s.value for s in OrderState} else None,
        needs_attention={"yes": True, "no": False}.get(attention or ""),
        sku=(sku or "").strip() or None,
        # The buyer's email and address are personal data: searched by admin tokens only.
        buyer=(buyer or "").strip() or None if actor.may_write else None,
        placed_from=_parse_day(placed_from),
        placed_to=until + timedelta(days=1) if until else None,
    )


OrderQuery = Annotated[str | None, Query(max_length=128)]


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    runtime: RuntimeDep,
    channel: OrderQuery = None,
    connection: OrderQuery = None,
    channel_order_id: OrderQuery = None,
    status: OrderQuery = None,
    attention: OrderQuery = None,
    sku: OrderQuery = None,
    buyer: OrderQuery = None,
    placed_from: OrderQuery = None,
    placed_to: OrderQuery = None,
    cursor: OrderQuery = None,
) -> HTMLResponse:
    where = _filter(
        session.actor,
        channel,
        connection,
        channel_order_id,
        status,
        attention,
        sku,
        buyer,
        placed_from,
        placed_to,
    )
    rows = console_repo.search_orders(reader, where, after_id=cursor, limit=PAGE + 1)
    page = list(rows[:PAGE])
    lines = defaultdict(list)
    for line in orders_repo.lines_for(reader, [o.id for o in page]):
        lines[line.order_id].append(line)
    params = {
        "channel": channel or "",
        "connection": connection or "",
        "channel_order_id": channel_order_id or "",
        "status": status or "",
        "attention": attention or "",
        "sku": sku or "",
        "buyer": buyer or "",
        "placed_from": placed_from or "",
        "placed_to": placed_to or "",
    }
    kept = {k: v for k, v in params.items() if v}
    next_cursor = page[-1].id if len(rows) > PAGE else None
    return render(
        request,
        session,
        "orders.html",
        section="orders",
        orders=page,
        lines=lines,
        params=params,
        channels=sorted({system_of(key) for key in runtime.connectors.channel_keys()}),
        connections=connection_keys(reader, runtime, Role.CHANNEL),
        states=[s.value for s in OrderState],
        next_url=f"/console/orders?{urlencode({**kept, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/console/orders?{urlencode(kept)}" if cursor else None,
        csv_url=f"/console/orders.csv?{urlencode(kept)}",
    )


@router.get("/orders.csv")
def orders_csv(
    session: SessionDep,
    runtime: RuntimeDep,
    channel: OrderQuery = None,
    connection: OrderQuery = None,
    channel_order_id: OrderQuery = None,
    status: OrderQuery = None,
    attention: OrderQuery = None,
    sku: OrderQuery = None,
    buyer: OrderQuery = None,
    placed_from: OrderQuery = None,
    placed_to: OrderQuery = None,
) -> StreamingResponse:
    """Every order matching the filter, read a page at a time as the file streams."""
    where = _filter(
        session.actor,
        channel,
        connection,
        channel_order_id,
        status,
        attention,
        sku,
        buyer,
        placed_from,
        placed_to,
    )
    personal = session.actor.may_write
    header = [
        "id",
        "channel",
        "connection",
        "channel_order_id",
        "status",
        "channel_status",
        "currency",
        "total_amount",
        "needs_attention",
        "attention_reason",
        "fulfilment_provider",
        "fulfilment_ref",
        "placed_at",
        "created_at",
        "skus",
    ] + (["buyer_email"] if personal else [])

    def rows() -> Iterator[list[object]]:
        cursor: str | None = None
        while True:
            with runtime.db.reader() as reader:
                page = list(console_repo.search_orders(reader, where, after_id=cursor, limit=500))
                skus = defaultdict(list)
                for line in orders_repo.lines_for(reader, [o.id for o in page]):
                    skus[line.order_id].append(f"{line.sku or '?'} x{line.quantity}")
            for o in page:
                row: list[object] = [
                    o.id,
                    o.channel,
                    o.connection,
                    o.channel_order_id,
                    o.status,
                    o.channel_status,
                    o.currency,
                    str(o.total_amount),
                    "yes" if o.needs_attention else "no",
                    o.attention_reason or "",
                    o.fulfilment_provider or "",
                    o.fulfilment_ref or "",
                    o.placed_at.isoformat(),
                    o.created_at.isoformat(),
                    "; ".join(skus[o.id]),
                ]
                if personal:
                    row.append(o.buyer_email or "")
                yield row
            if len(page) < 500:
                return
            cursor = page[-1].id

    return StreamingResponse(
        csvio.write(header, rows()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )


def _timeline(
    reader: Session, order_id: str, detail: OrderDetail, jobs: list[Any], events: list[Any]
) -> list[dict[str, Any]]:
    """Everything that happened to an order, oldest first: its history, its jobs, the events
    that touched it, its shipments and the operators' changes."""
    entries: list[dict[str, Any]] = []
    for h in detail.history:
        entries.append({"at": h.at, "kind": "history", "item": h})
    for job in jobs:
        entries.append({"at": job["job"].created_at, "kind": "job", "item": job})
    for event in events:
        entries.append({"at": event.received_at, "kind": "event", "item": event})
    for shipment in detail.shipments:
        entries.append(
            {"at": shipment.shipped_at or detail.created_at, "kind": "shipment", "item": shipment}
        )
    for entry in audit.search(reader, order_id=order_id, limit=200):
        entries.append({"at": entry.at, "kind": "audit", "item": entry})
    entries.sort(key=lambda e: e["at"])
    return entries


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    order_id: str, request: Request, session: SessionDep, reader: ReaderDep
) -> HTMLResponse:
    personal = session.actor.may_write
    try:
        detail = order_detail(reader, order_id, personal=personal)
    except orders.OrderNotFound:
        return render(
            request,
            session,
            "missing.html",
            section="orders",
            what=f"order {order_id}",
            status_code=404,
        )
    jobs = [
        {"job": job, "attempts": queue.attempts_of(reader, job.id or 0)}
        for job in queue.list_jobs(reader, order_id=order_id, limit=500)
    ]
    events = list(inbox_repo.for_order(reader, order_id))
    pushed = {s.id: s.pushed_to_channel_at for s in fulfilment_repo.shipments(reader, order_id)}
    status = detail.status
    allowed = {
        "cancel": may(status, Trigger.CANCEL),
        "reject": may(status, Trigger.REJECT),
        "retry_fulfilment": status == OrderState.CONFIRMED,
        "ship": may(status, Trigger.SHIP),
    }
    return render(
        request,
        session,
        "order.html",
        section="orders",
        order=detail,
        personal=personal,
        timeline=_timeline(reader, order_id, detail, jobs, events),
        pushed=pushed,
        allowed=allowed,
        diagram=Markup(state_machine_svg(describe(), current=status)),
        open_lines=[
            line
            for line in detail.lines
            if line.sku and line.quantity - line.shipped_quantity - line.cancelled_quantity > 0
        ],
    )


Reason = Annotated[str, Form(min_length=1, max_length=500)]


@router.post("/orders/{order_id}/cancel")
def cancel(
    order_id: str, request: Request, runtime: RuntimeDep, actor: WriterDep, reason: Reason
) -> RedirectResponse:
    return attempt(
        request,
        f"/console/orders/{order_id}",
        lambda: actions.cancel_order(runtime, actor, order_id, _reason(reason)),
        "Order cancelled.",
    )


@router.post("/orders/{order_id}/reject")
def reject(
    order_id: str, request: Request, runtime: RuntimeDep, actor: WriterDep, reason: Reason
) -> RedirectResponse:
    return attempt(
        request,
        f"/console/orders/{order_id}",
        lambda: actions.reject_order(runtime, actor, order_id, _reason(reason)),
        "Rejection queued: the channel is told first.",
    )


@router.post("/orders/{order_id}/retry-fulfilment")
def retry_fulfilment(
    order_id: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    return attempt(
        request,
        f"/console/orders/{order_id}",
        lambda: actions.retry_fulfilment(runtime, actor, order_id, _reason(reason)),
        "Fulfilment queued again.",
    )


@router.post("/orders/{order_id}/resolve")
def resolve(
    order_id: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    note: Reason,
    flag_id: Annotated[int | None, Form(ge=1, lt=2**31)] = None,
) -> RedirectResponse:
    return attempt(
        request,
        f"/console/orders/{order_id}",
        lambda: actions.resolve_flag(runtime, actor, order_id, _reason(note), flag_id),
        "Flag resolved.",
    )


@router.post("/orders/{order_id}/shipments")
def ship(
    order_id: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    carrier: Annotated[str, Form(min_length=1, max_length=64)],
    tracking_number: Annotated[str, Form(min_length=1, max_length=128)],
    sku: Annotated[list[str], Form()],
    quantity: Annotated[list[str], Form()],
    tracking_url: Annotated[str, Form(max_length=2048)] = "",
    serials: Annotated[list[str] | None, Form()] = None,
) -> RedirectResponse:
    to = f"/console/orders/{order_id}"
    lines = []
    given = serials or [""] * len(sku)
    for line_sku, raw, numbers in zip(sku, quantity, given, strict=False):
        try:
            units = int(raw or 0)
        except ValueError:
            return back(request, to, f"Not done: {raw!r} is not a number of units")
        if units > 0:
            lines.append(actions.ShipmentLine(line_sku, units, _serial_list(numbers)))
    if not lines:
        return back(request, to, "Not done: a shipment needs at least one unit")
    return attempt(
        request,
        to,
        lambda: actions.manual_shipment(
            runtime, actor, order_id, lines, carrier, tracking_number, tracking_url or None
        ),
        "Shipment recorded; its tracking goes to the channel.",
    )


def _serial_list(text: str) -> tuple[str, ...]:
    """Serial numbers as typed: separated by commas, spaces or new lines."""
    return tuple(part for part in re.split(r"[\s,;]+", text) if part)


@router.post("/orders/{order_id}/shipments/{shipment_id}/serials")
def give_serials(
    order_id: str,
    shipment_id: int,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    sku: Annotated[list[str], Form()],
    serials: Annotated[list[str], Form()],
) -> RedirectResponse:
    given = {s: _serial_list(text) for s, text in zip(sku, serials, strict=False)}
    given = {s: numbers for s, numbers in given.items() if numbers}
    to = f"/console/orders/{order_id}"
    if not given:
        return back(request, to, "Not done: no serial numbers given")
    return attempt(
        request,
        to,
        lambda: actions.give_serials(runtime, actor, order_id, shipment_id, given),
        "Serial numbers kept; the shipment goes to the channel again.",
    )


# -- jobs -------------------------------------------------------------------------------------


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    runtime: RuntimeDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    connection: Annotated[str | None, Query(max_length=97)] = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> HTMLResponse:
    state = state if state in {s.value for s in JobState} else None
    rows = console_repo.search_jobs(
        reader,
        state=state,
        kind=kind or None,
        connection=resolve_key(connection) if connection else None,
        before_id=cursor,
        limit=PAGE + 1,
    )
    page = list(rows[:PAGE])
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for k, s, n in queue.counts_by_kind_and_state(reader):
        counts[k][s] = n
    kept = {k: v for k, v in {"state": state, "kind": kind, "connection": connection}.items() if v}
    return render(
        request,
        session,
        "jobs.html",
        section="jobs",
        jobs=page,
        counts=dict(sorted(counts.items())),
        job_states=[s.value for s in JobState],
        state=state or "",
        kind=kind or "",
        connection=connection or "",
        connections=connection_keys(reader, runtime),
        next_url=f"/console/jobs?{urlencode({**kept, 'cursor': page[-1].id})}"
        if len(rows) > PAGE
        else None,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: int, request: Request, session: SessionDep, reader: ReaderDep) -> HTMLResponse:
    job = queue.get(reader, job_id) if 0 < job_id < 2**31 else None
    if job is None:
        return render(
            request, session, "missing.html", section="jobs", what=f"job {job_id}", status_code=404
        )
    return render(
        request,
        session,
        "job.html",
        section="jobs",
        job=job,
        attempts=queue.attempts_of(reader, job_id),
    )


@router.post("/jobs/{job_id}/retry")
def retry_job(
    job_id: int,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    reason: Annotated[str, Form(max_length=500)] = "",
    to: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    return attempt(
        request,
        _safe_next(to or f"/console/jobs/{job_id}"),
        lambda: actions.retry_job(runtime, actor, job_id, _reason(reason)),
        f"Job {job_id} queued to run again.",
    )


@router.post("/jobs/retry-dead")
def retry_dead(
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    kind: Annotated[str, Form(min_length=1, max_length=64)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    retried: list[int] = []
    to = f"/console/jobs?{urlencode({'state': 'dead', 'kind': kind})}"
    response = attempt(
        request,
        to,
        lambda: retried.append(actions.retry_dead(runtime, actor, kind, _reason(reason))),
        "",
    )
    if retried:
        flash(response, request, f"{retried[0]} dead {kind} jobs queued to run again.")
    return response


# -- stock ------------------------------------------------------------------------------------


@router.get("/stock", response_class=HTMLResponse)
def stock_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    q: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    rows = stock_repo.search(reader, q, after_sku=cursor, limit=PAGE + 1)
    page = list(rows[:PAGE])
    kept = {"q": q} if q else {}
    return render(
        request,
        session,
        "stock.html",
        section="stock",
        items=page,
        q=q or "",
        next_url=f"/console/stock?{urlencode({**kept, 'cursor': page[-1].sku})}"
        if len(rows) > PAGE
        else None,
    )


@router.get("/stock.csv")
def stock_csv(session: SessionDep, runtime: RuntimeDep) -> StreamingResponse:
    """Every SKU's figures, in the columns an import reads back (sku, on_hand first)."""

    def rows() -> Iterator[list[object]]:
        cursor: str | None = None
        while True:
            with runtime.db.reader() as reader:
                page = list(stock_repo.search(reader, None, after_sku=cursor, limit=1000))
            for item in page:
                yield [item.sku, item.on_hand, item.reserved, item.available]
            if len(page) < 1000:
                return
            cursor = page[-1].sku

    return StreamingResponse(
        csvio.write(["sku", "on_hand", "reserved", "available"], rows()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="stock.csv"'},
    )


@dataclass(frozen=True, slots=True)
class ImportChange:
    """One row of an import's preview: a SKU's count now and after."""

    sku: str
    before: int | None  # None: the SKU has no stock row yet
    after: int
    reserved: int


@router.get("/stock/import", response_class=HTMLResponse)
def import_page(request: Request, session: SessionDep) -> HTMLResponse:
    return render(request, session, "stock_import.html", section="stock", preview=None)


@router.post("/stock/import", response_class=HTMLResponse)
def import_preview(
    request: Request,
    reader: ReaderDep,
    session: SessionDep,
    actor: WriterDep,
    file: Annotated[UploadFile, File()],
) -> HTMLResponse:
    """The file read and compared with the figures now; nothing changes until it is applied."""
    raw = file.file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")  # what older spreadsheets save
    parsed = csvio.parse_stock(text)
    now = console_repo.stock_for(reader, [sku for sku, _ in parsed.rows])
    changes = [
        ImportChange(
            sku,
            now[sku].on_hand if sku in now else None,
            on_hand,
            now[sku].reserved if sku in now else 0,
        )
        for sku, on_hand in parsed.rows
    ]
    normalised = "".join(csvio.write(["sku", "on_hand"], parsed.rows))
    return render(
        request,
        session,
        "stock_import.html",
        section="stock",
        preview=parsed,
        changes=changes,
        below=[c for c in changes if c.after < c.reserved],
        normalised=normalised,
        filename=(file.filename or "upload.csv")[:100],
    )


@router.post("/stock/import/apply")
def import_apply(
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    counts: Annotated[str, Form(max_length=1_000_000)],
    filename: Annotated[str, Form(max_length=100)] = "upload.csv",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    parsed = csvio.parse_stock(counts)
    if parsed.problems:
        return back(request, "/console/stock/import", "Not done: " + "; ".join(parsed.problems[:3]))
    return attempt(
        request,
        "/console/stock",
        lambda: actions.import_stock(runtime, actor, parsed.rows, filename, _reason(reason)),
        f"Imported {len(parsed.rows)} SKUs.",
    )


@router.get("/stock/{sku}", response_class=HTMLResponse)
def sku_page(sku: str, request: Request, session: SessionDep, reader: ReaderDep) -> HTMLResponse:
    item = stock_repo.get(reader, sku) if len(sku) <= 128 else None
    return render(
        request,
        session,
        "sku.html",
        section="stock",
        sku=sku,
        item=item,
        movements=stock_repo.movements(reader, sku, limit=200) if item else [],
    )


@router.post("/stock/{sku}")
def set_stock(
    sku: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    on_hand: Annotated[int, Form(ge=0, le=csvio.MAX_ON_HAND)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    to = f"/console/stock/{sku}"
    if not 0 < len(sku) <= 128:
        return back(request, "/console/stock", "Not done: a SKU has 1 to 128 characters")
    return attempt(
        request,
        to,
        lambda: actions.set_stock(runtime, actor, sku, on_hand, _reason(reason)),
        f"{sku}: on hand set to {on_hand}.",
    )


# -- webhooks ---------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    runtime: RuntimeDep,
    connection: Annotated[str | None, Query(max_length=97)] = None,
) -> HTMLResponse:
    key = resolve_key(connection) if connection else None
    return render(
        request,
        session,
        "webhooks.html",
        section="webhooks",
        rejected=inbox_repo.deliveries(
            reader, outcome=DeliveryOutcome.REJECTED.value, connection=key, limit=100
        ),
        duplicates=inbox_repo.deliveries(
            reader, outcome=DeliveryOutcome.DUPLICATE.value, connection=key, limit=20
        ),
        failed=inbox_repo.search(
            reader, status=InboundStatus.FAILED.value, connection=key, limit=100
        ),
        connection=key or "",
        connections=connection_keys(reader, runtime),
    )


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(
    event_id: int, request: Request, session: SessionDep, reader: ReaderDep
) -> HTMLResponse:
    event = inbox_repo.get(reader, event_id) if 0 < event_id < 2**31 else None
    if event is None:
        return render(
            request,
            session,
            "missing.html",
            section="webhooks",
            what=f"event {event_id}",
            status_code=404,
        )
    return render(
        request,
        session,
        "event.html",
        section="webhooks",
        event=event,
        body=event.body.decode("utf-8", "replace"),
    )


@router.post("/events/{event_id}/replay")
def replay(
    event_id: int,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    return attempt(
        request,
        f"/console/events/{event_id}",
        lambda: actions.replay_event(runtime, actor, event_id, _reason(reason)),
        f"Event {event_id} queued to be processed again.",
    )


# -- reconciliation ---------------------------------------------------------------------------


@router.get("/reconcile", response_class=HTMLResponse)
def reconcile_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    runtime: RuntimeDep,
    channel: Annotated[str | None, Query(max_length=97)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    rows = reconcile_repo.recent(
        reader, connection=channel or None, before_id=cursor, limit=PAGE + 1
    )
    page = list(rows[:PAGE])
    kept = {"channel": channel} if channel else {}
    return render(
        request,
        session,
        "reconcile.html",
        section="reconcile",
        runs=page,
        channel=channel or "",
        channels=runtime.connectors.channel_keys(),
        next_url=f"/console/reconcile?{urlencode({**kept, 'cursor': page[-1].id})}"
        if len(rows) > PAGE
        else None,
    )


@router.post("/reconcile")
def start_reconcile(
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    channel: Annotated[str, Form(min_length=1, max_length=97)],
    window_from: Annotated[str, Form(max_length=40)] = "",
    window_to: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    started: list[str] = []
    response = attempt(
        request,
        "/console/reconcile",
        lambda: started.append(
            actions.start_reconcile(
                runtime,
                actor,
                channel,
                _parse_moment(window_from),
                _parse_moment(window_to),
                _reason(reason),
            )
        ),
        "",
    )
    if started:
        flash(response, request, f"Reconciliation of {channel} queued as {started[0]}.")
    return response


def _parse_moment(value: str) -> datetime | None:
    """A time from a datetime-local field, read as UTC."""
    if not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- connections ------------------------------------------------------------------------------


@router.post("/connections/{system}/connect")
def connect_by_signing_in(
    system: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    name: Annotated[str, Form(max_length=63)] = "",
) -> RedirectResponse:
    """Start the sign-in and send the browser to the system's authorize page, with the cookie
    that binds the state to this browser."""
    try:
        started = signin.start(
            runtime,
            system=system,
            name=name.strip(),
            actor=actor,
            callback_url=callback_url(request, system),
            console=True,
        )
    except DomainError as exc:
        return back(request, "/console/connections", f"Not done: {exc}")
    response = RedirectResponse(started.authorization_url, status_code=303)
    set_binding(response, request, started)
    return response


# -- audit ------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> HTMLResponse:
    rows = audit.search(
        reader, actor=actor or None, action=action or None, before_id=cursor, limit=PAGE + 1
    )
    page = list(rows[:PAGE])
    kept = {k: v for k, v in {"actor": actor, "action": action}.items() if v}
    return render(
        request,
        session,
        "audit.html",
        section="audit",
        entries=page,
        actor_filter=actor or "",
        action_filter=action or "",
        next_url=f"/console/audit?{urlencode({**kept, 'cursor': page[-1].id})}"
        if len(rows) > PAGE
        else None,
    )
