"""All SQL about routing rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from hub.fulfilment.models import RoutingRule


def rules(session: Session) -> Sequence[RoutingRule]:
    return session.scalars(
        select(RoutingRule).order_by(col(RoutingRule.priority), col(RoutingRule.id))
    ).all()


def get(session: Session, rule_id: int) -> RoutingRule | None:
    return session.get(RoutingRule, rule_id)
