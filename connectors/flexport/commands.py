"""`hub flexport ...`: the Flexport webhook subscriptions the hub needs, made and listed."""

from __future__ import annotations

import click

from connectors.base import ConnectorError
from connectors.flexport.client import SUBSCRIBED_EVENTS, FlexportProvider
from connectors.flexport.config import FlexportSettings


def _provider() -> FlexportProvider:
    settings = FlexportSettings()
    if not settings.configured:
        raise click.ClickException("FLEXPORT_ACCESS_TOKEN is not set")
    return FlexportProvider(settings)


def _show(hooks: list[dict[str, object]]) -> None:
    for hook in hooks:
        click.echo(f"{hook.get('id')}\t{hook.get('type')}\t{hook.get('url')}")


@click.group(name="flexport")
def flexport() -> None:
    """Flexport Logistics API: webhook subscriptions."""


@flexport.command()
@click.option(
    "--url",
    envvar="FLEXPORT_WEBHOOK_URL",
    required=True,
    help="The hub's public https://.../webhooks/flexport (FLEXPORT_WEBHOOK_URL).",
)
def subscribe(url: str) -> None:
    """Subscribe URL to every event type the hub acts on (those it lacks), authenticated as
    FLEXPORT_WEBHOOK_AUTH says; then list every subscription."""
    if not url.startswith("https://"):
        raise click.ClickException("Flexport delivers only to https:// URLs")
    provider = _provider()
    try:
        created = provider.subscribe(url)
        click.echo(f"created {len(created)} of {len(SUBSCRIBED_EVENTS)} subscriptions")
        _show(provider.list_webhooks())
    except ConnectorError as exc:
        raise click.ClickException(exc.reason) from exc
    finally:
        provider.close()


@flexport.command(name="webhooks")
def list_webhooks() -> None:
    """List the account's webhook subscriptions."""
    provider = _provider()
    try:
        _show(provider.list_webhooks())
    except ConnectorError as exc:
        raise click.ClickException(exc.reason) from exc
    finally:
        provider.close()
