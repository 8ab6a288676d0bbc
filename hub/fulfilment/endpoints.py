"""Admin endpoints for routing rules: which provider ships which orders."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from connectors.registry import resolve
from hub import audit
from hub.deps import ActorDep, ReaderDep, RowId, RuntimeDep, require_admin
from hub.errors import ApiError
from hub.fulfilment import repository as repo
from hub.fulfilment.models import RoutingRule

router = APIRouter(
    prefix="/admin/routing-rules", tags=["fulfilment"], dependencies=[Depends(require_admin)]
)


class RuleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "priority": 10,
                "channel": "topi",
                "sku_pattern": "LAPTOP-*",
                "country_code": "DE",
                "provider": "deliverr",
            }
        },
    )

    priority: int = Field(default=100, ge=0, le=1_000_000)
    channel: str | None = Field(default=None, max_length=32)
    # Only orders of this channel connection ("depop/shop-b"; a bare system: its default).
    connection: str | None = Field(default=None, max_length=97)
    sku_pattern: str | None = Field(default=None, max_length=128)
    country_code: str | None = Field(default=None, min_length=2, max_length=2)
    # A provider connection ("deliverr/eu"), a provider's name for its default connection, or
    # `manual`.
    provider: str = Field(min_length=1, max_length=97)


class RulePublic(RuleIn):
    model_config = ConfigDict(extra="ignore")

    id: int


def _known_providers(runtime: RuntimeDep) -> set[str]:
    return {"manual", *runtime.connectors.provider_keys()}


@router.get("", response_model=list[RulePublic])
def list_rules(session: ReaderDep) -> list[RulePublic]:
    """Rules in the order they are tried."""
    return [RulePublic.model_validate(r, from_attributes=True) for r in repo.rules(session)]


@router.post(
    "",
    response_model=RulePublic,
    status_code=201,
    responses={422: {"description": "Unknown provider"}},
)
def create_rule(body: RuleIn, runtime: RuntimeDep, actor: ActorDep) -> RulePublic:
    if body.connection is not None and not runtime.connectors.has_channel(body.connection):
        raise ApiError(
            422,
            "unknown_connection",
            f"{body.connection!r} is not an enabled channel connection; a rule limited to it "
            "would never match",
        )
    if body.provider != "manual" and resolve(body.provider) not in _known_providers(runtime):
        raise ApiError(
            422,
            "unknown_provider",
            f"provider {body.provider!r} is not configured; known: "
            f"{', '.join(sorted(_known_providers(runtime)))}",
        )
    with runtime.db.transaction() as session:
        rule = RoutingRule(**body.model_dump())
        session.add(rule)
        session.flush()
        audit.record(
            session, actor, "routing_rule.create", f"rule {rule.id}", detail=body.model_dump()
        )
        return RulePublic.model_validate(rule, from_attributes=True)


@router.delete("/{rule_id}", status_code=204, responses={404: {"description": "No such rule"}})
def delete_rule(rule_id: RowId, runtime: RuntimeDep, actor: ActorDep) -> None:
    with runtime.db.transaction() as session:
        rule = repo.get(session, rule_id)
        if rule is None:
            raise ApiError(404, "rule_not_found", f"routing rule {rule_id} not found")
        session.delete(rule)
        audit.record(session, actor, "routing_rule.delete", f"rule {rule_id}")
