"""The hub under test, wired to every simulator through real httpx clients.

Webhooks go simulator -> hub app over httpx; calls go hub connector -> simulator app over httpx.
Jobs run when a test calls `drain()`, so each test decides when the worker runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import col
from starlette.types import ASGIApp

from connectors.aboutyou import AboutYouSettings
from connectors.aboutyou.config import ReturnLabelPolicy
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.deliverr import DeliverrSettings
from connectors.deliverr.simulator import DeliverrSimulator
from connectors.depop import DepopSettings
from connectors.depop.simulator import DepopSimulator
from connectors.flexport import FlexportSettings
from connectors.flexport.simulator import FlexportSimulator
from connectors.topi import TopiSettings
from connectors.topi.simulator import TopiSimulator
from hub.config import HubSettings, Settings
from hub.db import Database
from hub.jobs.models import Job, JobState
from hub.jobs.worker import run_one, worker_name
from hub.runtime import Runtime
from hub.sim import SimulatedHub, wire_simulators
from hub.types import utcnow
from tests.fake_channel import FakeChannel

# Where each system lives; the in-process test client serves its simulator whatever host is
# asked, so topi's token URL on its identity host reaches the topi simulator too.
HOSTS = {
    "depop": "https://partnerapi.depop.com",
    "topi": "https://seller-api.topi.eu",
    "topi_identity": "https://identity.topi.eu/oauth2/token",
    "deliverr": "https://api.deliverr.com",
    "aboutyou": "https://partner.aboutyou.com",
    "flexport": "https://logistics-api.flexport.com",
}

ADMIN_TOKEN = "test-admin-token"
ADMIN_NAME = "ops"  # the name HUB_ADMIN_TOKENS gives it: what history and audit record
DEPOP_KEY, DEPOP_SECRET = "depop-key", "depop-webhook-secret"
TOPI_ID, TOPI_SECRET = "topi-client", "topi-client-secret"
TOPI_WHSEC = "whsec_dG9waS13ZWJob29rLXNlY3JldC1rZXk="
DELIVERR_TOKEN, DELIVERR_HOOK = "deliverr-access", "deliverr-webhook-token"
FLEXPORT_TOKEN, FLEXPORT_HOOK = "flexport-access", "flexport-webhook-token"
AY_KEY, AY_HOOK = "aboutyou-api-key", "aboutyou-webhook-key"
AY_RETURN_LABEL = "aboutyou-return-label"


def hub_settings(database_url: str, **overrides: Any) -> HubSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_tokens": [SecretStr(f"{ADMIN_NAME}:{ADMIN_TOKEN}")],
        "job_backoff_base": 0.001,
        "job_max_backoff_seconds": 0.005,
        "job_max_attempts": 4,
        "worker_poll_seconds": 0.01,
    }
    values.update(overrides)
    return HubSettings(**values)


def all_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        hub_settings(database_url, **overrides),
        depop=DepopSettings(
            base_url=HOSTS["depop"],
            api_key=SecretStr(DEPOP_KEY),
            webhook_secret=SecretStr(DEPOP_SECRET),
        ),
        topi=TopiSettings(
            base_url=HOSTS["topi"],
            token_url=HOSTS["topi_identity"],
            client_id=TOPI_ID,
            client_secret=SecretStr(TOPI_SECRET),
            webhook_secrets=[SecretStr(TOPI_WHSEC)],
        ),
        deliverr=DeliverrSettings(
            base_url=HOSTS["deliverr"],
            access_token=SecretStr(DELIVERR_TOKEN),
            webhook_token=SecretStr(DELIVERR_HOOK),
        ),
        flexport=FlexportSettings(
            base_url=HOSTS["flexport"],
            access_token=SecretStr(FLEXPORT_TOKEN),
            webhook_token=SecretStr(FLEXPORT_HOOK),
        ),
        aboutyou=AboutYouSettings(
            base_url=HOSTS["aboutyou"],
            api_key=SecretStr(AY_KEY),
            webhook_key=SecretStr(AY_HOOK),
            return_label_policy=ReturnLabelPolicy.FIXED,
            return_label_number=AY_RETURN_LABEL,
        ),
    )


@dataclass
class Hub:
    runtime: Runtime
    client: TestClient
    depop: DepopSimulator
    topi: TopiSimulator
    deliverr: DeliverrSimulator
    aboutyou: AboutYouSimulator
    flexport: FlexportSimulator
    wired: SimulatedHub
    fake: FakeChannel | None = None

    @property
    def db(self) -> Database:
        return self.runtime.db

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        response: httpx.Response = self.client.request(method, path, headers=headers, **kwargs)
        return response

    def drain(self, *, wait_for_retries: float = 2.0) -> int:
        """Run jobs until none is due and none comes due within `wait_for_retries` seconds
        (test backoff is milliseconds); returns how many ran."""
        name = worker_name()
        ran = 0
        while True:
            if run_one(self.runtime, name):
                ran += 1
                continue
            with self.db.reader() as session:
                soonest = session.scalar(
                    select(func.min(Job.run_at)).where(col(Job.state) == JobState.QUEUED)
                )
            if soonest is None or (soonest - utcnow()).total_seconds() > wait_for_retries:
                return ran
            time.sleep(0.002)

    def poll_fulfilment(self, order_id: str) -> None:
        """Ask the order's provider where it stands, as the scheduled poll does, and run what
        follows: Deliverr sends no webhook for a partial shipment, so the hub learns it so."""
        self.wired.poll_fulfilment(order_id)
        self.drain()

    def set_stock(self, sku: str, on_hand: int) -> None:
        response = self.admin("PUT", f"/admin/stock/{sku}", json={"on_hand": on_hand})
        assert response.status_code == 200, response.text

    def stock(self, sku: str) -> dict[str, Any]:
        response = self.admin("GET", f"/admin/stock/{sku}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def order(self, channel: str, channel_order_id: str) -> dict[str, Any]:
        """The admin API's detail of the order the channel knows as `channel_order_id`."""
        found = self.admin(
            "GET",
            "/admin/orders",
            params={"channel": channel, "channel_order_id": channel_order_id},
        ).json()["data"]
        assert len(found) == 1, f"{channel} order {channel_order_id}: {len(found)} found"
        return self.order_by_id(found[0]["id"])

    def order_by_id(self, order_id: str) -> dict[str, Any]:
        response = self.admin("GET", f"/admin/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def orders(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.admin("GET", "/admin/orders", params=params).json()["data"])

    def deliverr_order(self, hub_order_id: str) -> dict[str, Any]:
        found = self.deliverr.order_by_external_id(hub_order_id)
        assert found is not None, f"no Deliverr order for {hub_order_id}"
        return found

    def close(self) -> None:
        self.wired.close()


def make_hub(
    database: Database,
    *,
    fake: bool = False,
    deliverr: bool = True,
    flexport: bool = True,
    **hub_overrides: Any,
) -> Hub:
    """A hub over `database` with every channel configured against its simulator."""
    settings = all_settings(database.url, **hub_overrides)
    wired = wire_simulators(settings, in_process, db=database, admin_token=ADMIN_TOKEN)
    runtime = wired.runtime
    if not deliverr:
        runtime.connectors.remove("deliverr")
    if not flexport:
        runtime.connectors.remove("flexport")
    fake_channel = None
    if fake:
        fake_channel = FakeChannel()
        runtime.connectors.add_channel(fake_channel)
    assert isinstance(wired.client, TestClient)
    return Hub(
        runtime,
        wired.client,
        wired.simulator("depop", DepopSimulator),
        wired.simulator("topi", TopiSimulator),
        wired.simulator("deliverr", DeliverrSimulator),
        wired.simulator("aboutyou", AboutYouSimulator),
        wired.simulator("flexport", FlexportSimulator),
        wired,
        fake_channel,
    )


def in_process(app: ASGIApp, base_url: str) -> TestClient:
    """A client that reaches `app` in this process, whatever host a URL names."""
    return TestClient(app, base_url=base_url)
