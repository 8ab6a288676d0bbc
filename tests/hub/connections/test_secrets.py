"""Connection secrets at rest: sealed with HUB_SECRET_KEY, and rotated in one transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import SecretStr

from hub.cli import main
from hub.connections.service import plain_values
from hub.db import Database
from hub.secrets import SecretBox, UnreadableSecret, generate_key
from tests.harness import make_hub


def test_a_box_opens_what_it_sealed_and_nothing_else() -> None:
    box = SecretBox([generate_key()])
    sealed = box.seal({"api_key": "k-123"})
    assert "k-123" not in sealed
    assert box.open(sealed) == {"api_key": "k-123"}
    with pytest.raises(UnreadableSecret):
        SecretBox([generate_key()]).open(sealed)


def test_rotation_reseals_every_secret_with_the_new_key(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    hub = make_hub(database, secret_key=SecretStr(old))
    try:
        _, settings = hub.wired.add_account("depop", "shop-b")
        made = hub.admin(
            "POST",
            "/admin/connections",
            json={"system": "depop", "name": "shop-b", "settings": plain_values(settings)},
        )
        assert made.status_code == 201, made.text
    finally:
        hub.close()
    with database.engine.connect() as conn:
        sealed_before = conn.execute(
            sa.text("SELECT secrets FROM connections WHERE key = 'depop/shop-b'")
        ).scalar_one()
    assert SecretBox([old]).open(sealed_before)["api_key"]

    monkeypatch.setenv("HUB_DATABASE_URL", database.url)
    monkeypatch.setenv("HUB_SECRET_KEY", generate_key())  # neither key: nothing may change
    refused = CliRunner().invoke(main, ["secrets", "rotate"])
    assert refused.exit_code != 0 and "nothing was changed" in refused.output
    monkeypatch.setenv("HUB_SECRET_KEY", f"{new},{old}")
    done = CliRunner().invoke(main, ["secrets", "rotate"])
    assert done.exit_code == 0, done.output
    assert "resealed 1 connections" in done.output

    with database.engine.connect() as conn:
        sealed_after = conn.execute(
            sa.text("SELECT secrets FROM connections WHERE key = 'depop/shop-b'")
        ).scalar_one()
    assert sealed_after != sealed_before
    with pytest.raises(UnreadableSecret):
        SecretBox([old]).open(sealed_after)
    assert SecretBox([new]).open(sealed_after) == SecretBox([old]).open(sealed_before)
    # A hub given only the new key builds the connection.
    hub = make_hub(database, secret_key=SecretStr(new))
    try:
        assert hub.runtime.connectors.has_channel("depop/shop-b")
    finally:
        hub.close()


def test_generate_key_prints_a_usable_key() -> None:
    printed = CliRunner().invoke(main, ["secrets", "generate-key"])
    assert printed.exit_code == 0
    SecretBox([printed.output.strip()]).seal({"a": "b"})
