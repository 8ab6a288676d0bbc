"""`python -m drills`: run one fault drill and print its figures and claims; exit 1 when a
claim broke or the system did not settle.

    python -m drills --orders 3000 --concurrency 32 --kill-interval 3 --duration 600
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import click

from drills.run import DrillConfig, run_drill

_DEFAULTS = {f.name: f.default for f in fields(DrillConfig)}


@click.command()
@click.option(
    "--postgres-url",
    default=_DEFAULTS["postgres_url"],
    show_default=True,
    help="A database on the server to create the drill's own database from.",
)
@click.option("--orders", default=_DEFAULTS["orders"], show_default=True)
@click.option("--concurrency", default=_DEFAULTS["concurrency"], show_default=True)
@click.option(
    "--duration", default=_DEFAULTS["duration"], show_default=True, help="Seconds of load at most."
)
@click.option(
    "--kill-interval",
    default=_DEFAULTS["kill_interval"],
    show_default=True,
    help="Seconds between SIGKILLs of a hub process (0: none).",
)
@click.option(
    "--terminate-interval",
    default=_DEFAULTS["terminate_interval"],
    show_default=True,
    help="Seconds between terminations of every backend (0: none).",
)
@click.option("--error-rate", default=_DEFAULTS["error_rate"], show_default=True)
@click.option("--throttle-rate", default=_DEFAULTS["throttle_rate"], show_default=True)
@click.option("--hang-rate", default=_DEFAULTS["hang_rate"], show_default=True)
@click.option("--hang-seconds", default=_DEFAULTS["hang_seconds"], show_default=True)
@click.option("--reset-rate", default=_DEFAULTS["reset_rate"], show_default=True)
@click.option("--duplicate-rate", default=_DEFAULTS["duplicate_rate"], show_default=True)
@click.option("--skus", default=_DEFAULTS["skus"], show_default=True)
@click.option("--settle-timeout", default=_DEFAULTS["settle_timeout"], show_default=True)
@click.option("--worker-concurrency", default=_DEFAULTS["worker_concurrency"], show_default=True)
@click.option(
    "--reconcile-cron",
    default=_DEFAULTS["reconcile_cron"],
    show_default=True,
    help="HUB_RECONCILE_CRON for the drill's hub.",
)
@click.option("--seed", default=None, type=int)
@click.option(
    "--workdir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the processes' logs here.",
)
def main(**options: object) -> None:
    """Run a fault drill against a fresh Postgres database."""
    report = run_drill(DrillConfig(**options))  # type: ignore[arg-type]
    click.echo(report.render())
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
