"""Admin endpoints for stock: read a SKU, set its count, import many."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from hub import audit
from hub.deps import ActorDep, ReaderDep, RuntimeDep, require_admin
from hub.errors import ApiError
from hub.inventory import repository as repo
from hub.inventory import service
from hub.inventory.models import StockItem
from hub.inventory.schemas import MovementPublic, StockImport, StockIn, StockPage, StockPublic

router = APIRouter(prefix="/admin/stock", tags=["stock"], dependencies=[Depends(require_admin)])

Sku = Annotated[str, Path(min_length=1, max_length=128)]


def public(item: StockItem | service.Count) -> StockPublic:
    return StockPublic(
        sku=item.sku, on_hand=item.on_hand, reserved=item.reserved, available=item.available
    )


@router.get("", response_model=StockPage)
def list_stock(
    session: ReaderDep,
    q: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> StockPage:
    """Every SKU with a stock row, in SKU order; `q` keeps those whose SKU contains it."""
    rows = repo.search(session, q, after_sku=cursor, limit=limit + 1)
    page = rows[:limit]
    return StockPage(
        data=[public(item) for item in page],
        next_cursor=page[-1].sku if len(rows) > limit else None,
    )


@router.get("/{sku}", response_model=StockPublic, responses={404: {"description": "Unknown SKU"}})
def get_stock(sku: Sku, session: ReaderDep) -> StockPublic:
    item = repo.get(session, sku)
    if item is None:
        raise ApiError(404, "sku_not_found", f"no stock row for SKU {sku!r}")
    return public(item)


@router.get("/{sku}/movements", response_model=list[MovementPublic])
def get_movements(sku: Sku, session: ReaderDep) -> list[MovementPublic]:
    """The latest changes to a SKU's numbers, newest first, each with its reason."""
    return [
        MovementPublic.model_validate(m, from_attributes=True) for m in repo.movements(session, sku)
    ]


@router.put(
    "/{sku}",
    response_model=StockPublic,
    responses={409: {"description": "on_hand below what orders hold"}},
)
def put_stock(sku: Sku, body: StockIn, runtime: RuntimeDep, actor: ActorDep) -> StockPublic:
    """Set the counted units on hand; what is reserved stays reserved."""
    with runtime.db.transaction() as session:
        count = service.set_on_hand(session, sku, body.on_hand, note=actor.source)
        audit.record(session, actor, "stock.set", sku, detail={"on_hand": body.on_hand})
        return public(count)


@router.put(
    "",
    response_model=list[StockPublic],
    responses={409: {"description": "on_hand below what orders hold"}},
)
def import_stock(body: StockImport, runtime: RuntimeDep, actor: ActorDep) -> list[StockPublic]:
    """Set many SKUs at once, all or none."""
    with runtime.db.transaction() as session:
        counts = [(row.sku, row.on_hand) for row in body.items]
        done = service.set_on_hand_many(session, counts, note=f"import by {actor.name}")
        audit.record(
            session, actor, "stock.import", f"{len(counts)} SKUs", detail={"skus": len(counts)}
        )
        return [public(c) for c in done]
