"""The hub's settings: `HUB_*` for the hub itself; each connector in `connectors.catalog` brings
its own class with its own prefix (`DEPOP_`, `TOPI_`, ...), gathered here so one object carries
the whole configuration."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors.catalog import CONNECTORS
from connectors.connector import ConnectorSettings


class UntrackedSkuPolicy(StrEnum):
    """What to do with a SKU that has no stock row."""

    ALLOW = "allow"  # sell it without a reservation
    REJECT = "reject"  # treat it as out of stock


class HubSettings(BaseSettings):
    """`HUB_*` variables; see README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./hub.db"
    # NoDecode: the variables are comma-separated lists, not the JSON pydantic-settings expects.
    # Each entry a token or `name:token`; the name is what history and audit record.
    admin_tokens: Annotated[list[SecretStr], NoDecode] = []
    admin_read_tokens: Annotated[list[SecretStr], NoDecode] = []  # may only read (GET)
    # Keys that seal connection secrets and renewed tokens at rest (hub/secrets.py); several,
    # comma-separated, while rotating (the first seals). Unset on SQLite: a generated key file.
    secret_key: SecretStr | None = None
    # How often each process re-reads the connections table for an operator's changes.
    connections_refresh_seconds: float = 5.0
    log_format: str | None = None  # console in a terminal, else json
    log_level: str = "info"
    untracked_skus: UntrackedSkuPolicy = UntrackedSkuPolicy.ALLOW
    # The provider an order goes to when no routing rule matches: a provider's name or
    # `manual`. Unset: the first enabled provider in the connector catalogue, else manual.
    default_provider: str | None = None

    # Transient failures are retried for this long after a job's first attempt, then it dies.
    job_retry_window_seconds: float = 86400.0
    job_max_attempts: int = 0  # a limit by count as well, where wanted; 0: the window alone
    job_backoff_base: float = 2.0  # seconds; attempt n waits up to base * 2**(n-1)
    job_max_backoff_seconds: float = 900.0
    job_lease_seconds: float = 120.0
    # Per-kind priorities over the handlers' own, "kind=N,kind=N" (lower runs sooner).
    job_priorities: Annotated[dict[str, int], NoDecode] = {}
    worker_poll_seconds: float = 0.5
    worker_concurrency: int = 1

    # The scheduler leader's lease: renewed every third of it, so a follower takes over within
    # about one lease of a leader's crash. Slots missed within the catch-up window are queued
    # once when a scheduler leads again.
    scheduler_lease_seconds: float = 10.0
    scheduler_catchup_seconds: float = 6 * 3600.0

    # /metrics: a bearer token it asks for, and a port of its own (then not on the API's).
    metrics_token: SecretStr | None = None
    metrics_port: int | None = None
    # Done jobs (with their attempts) and settled inbound webhooks are deleted after these many
    # days; the webhooks' raw bodies hold buyers' names and addresses. Checked this often.
    retention_jobs_days: float = 14
    retention_events_days: float = 30
    retention_interval_seconds: int = 3600

    reconcile_cron: str = "0 3 * * *"  # daily, 03:00 UTC
    reconcile_overlap_minutes: int = 60  # each run re-reads this much before the last watermark
    reconcile_first_window_days: int = 7  # how far back the very first run looks
    fulfilment_poll_after_minutes: int = 360  # poll a routed order this long without news
    maintenance_interval_seconds: int = 900
    # Carrier names as each channel knows them: {"channel": {"provider's carrier": "name"}}
    # (JSON; matched without regard to case or blanks). Providers like Flexport report the
    # carrier as free text; a name not listed goes to the channel as the provider wrote it.
    carrier_names: dict[str, dict[str, str]] = {}
    # How often providers that name products by their own ids have their SKU map re-read.
    sku_map_refresh_seconds: int = 3600
    # Hours an order may stay in a state before a person is asked to look (JSON object).
    stuck_after_hours: dict[str, float] = {
        "created": 2,
        "acknowledged": 4,
        "confirmed": 48,
        "partially_fulfilled": 96,
    }

    @field_validator("admin_tokens", "admin_read_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [SecretStr(t.strip()) for t in value.split(",") if t.strip()]
        return value

    @field_validator("job_priorities", mode="before")
    @classmethod
    def _parse_priorities(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found: dict[str, int] = {}
        for entry in value.split(","):
            if not entry.strip():
                continue
            kind, sep, number = entry.partition("=")
            if not sep or not kind.strip():
                raise ValueError(f"HUB_JOB_PRIORITIES entries are kind=N, not {entry!r}")
            found[kind.strip()] = int(number)
        return found

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class Settings:
    """The whole configuration: the hub's own, and every catalogued connector's from its own
    prefix (`settings.depop`, `settings.connectors["depop"]`). A connector's settings may be
    given by name; the others are read from the environment."""

    def __init__(self, hub: HubSettings | None = None, **given: ConnectorSettings) -> None:
        known = {connector.name for connector in CONNECTORS}
        if unknown := set(given) - known:
            raise TypeError(f"no connector named {', '.join(sorted(unknown))}")
        self.hub = hub or HubSettings()
        self.connectors: dict[str, ConnectorSettings] = {
            connector.name: given.get(connector.name) or connector.settings()
            for connector in CONNECTORS
        }

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["connectors"][name]
        except KeyError:
            raise AttributeError(name) from None

    def secrets(self) -> list[str]:
        """Every configured secret value (to prove none of them leaks into logs or bodies)."""
        found: list[str] = []
        groups: list[HubSettings | ConnectorSettings] = [self.hub, *self.connectors.values()]
        for group in groups:
            for value in group.model_dump().values():
                items = value if isinstance(value, list) else [value]
                found.extend(v.get_secret_value() for v in items if isinstance(v, SecretStr))
        # A named admin token (`name:token`) is secret in its token part alone too.
        found.extend(s.partition(":")[2] for s in list(found) if ":" in s)
        return [s for s in found if s]
