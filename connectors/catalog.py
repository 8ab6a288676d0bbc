"""Every connector the hub knows, in one list: the hub's settings, its wiring, `hub demo`,
`hub simulate` and the tests all read it, so adding a connector is its package plus one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.aboutyou import CONNECTOR as ABOUTYOU
from connectors.connector import Connector
from connectors.deliverr import CONNECTOR as DELIVERR
from connectors.depop import CONNECTOR as DEPOP
from connectors.flexport import CONNECTOR as FLEXPORT
from connectors.topi import CONNECTOR as TOPI

CONNECTORS: list[Connector[Any]] = [DEPOP, TOPI, ABOUTYOU, DELIVERR, FLEXPORT]


def by_name() -> Mapping[str, Connector[Any]]:
    return {connector.name: connector for connector in CONNECTORS}
