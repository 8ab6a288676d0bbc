"""`hub demo` plays its orders end to end and exits 0 only when each ended where it should."""

from __future__ import annotations

import os
import subprocess
import sys


def test_hub_demo_drives_every_order_to_its_end_and_exits_0() -> None:
    prefixes = ("HUB_", "DEPOP_", "TOPI_", "DELIVERR_", "ABOUTYOU_", "FLEXPORT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    result = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every order ended where it should" in result.stdout
    assert "WRONG" not in result.stdout
    for story in ("cancelled", "rejected", "partially_fulfilled", "missing_order"):
        assert story in result.stdout
    assert "via Flexport" in result.stdout
    assert result.stderr == "", result.stderr
