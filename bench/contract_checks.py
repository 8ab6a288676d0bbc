"""CPU per contract check: what one simulator request costs in `Contract.check_request` (and a
watched client's answer in `response_problems`), for the requests the processes benchmark
sends most: Deliverr's create-order and Depop's mark-as-shipped and order read.

Each case runs the same valid request many times in one process and reports CPU microseconds
per call (process time, so other load on the machine does not count). The first call, which
builds whatever the contract keeps between calls, is not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from connectors.contracts import Contract
from connectors.deliverr.samples import CREATE_ORDER, CREATED
from connectors.deliverr.spec import CONTRACT as DELIVERR
from connectors.depop.spec import CONTRACT as DEPOP

CALLS = 2_000

_JSON = {"content-type": "application/json", "accept": "application/json"}
_KEY = "ea7fcc9d-803c-4849-bfe4-7839c45bbcc3"
_DELIVERR = "https://api.deliverr.com"
_DEPOP = "https://partnerapi.depop.com/api/v1"
_PARCEL = "670de183-df75-456e-8caf-9609e8a6d2d2"

Case = tuple[str, Contract, str, str, dict[str, str], bytes | None]

CASES: list[Case] = [
    (
        "deliverr create order",
        DELIVERR,
        "POST",
        f"{_DELIVERR}/orders/v1/order",
        {**_JSON, "authorization": "Bearer t", "idempotency-key": _KEY},
        json.dumps(CREATE_ORDER).encode(),
    ),
    (
        "depop mark as shipped",
        DEPOP,
        "POST",
        f"{_DEPOP}/orders/4000001/parcels/{_PARCEL}/mark-as-shipped/",
        {**_JSON, "authorization": "Bearer k"},
        b'{"tracking_number":"RM1GB","carrier":"Royal Mail"}',
    ),
    (
        "depop get order",
        DEPOP,
        "GET",
        f"{_DEPOP}/orders/4000001/",
        {"accept": "application/json", "authorization": "Bearer k"},
        None,
    ),
]


def _cpu_us(call: Callable[..., Any], *args: Any, calls: int = CALLS) -> float:
    call(*args)
    start = time.process_time()
    for _ in range(calls):
        call(*args)
    return (time.process_time() - start) * 1e6 / calls


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for case, contract, method, url, headers, body in CASES:
        check = contract.check_request(method, url, headers, body)
        assert check.operation is not None and not check.problems and not check.security, case
        rows.append(
            {
                "case": f"check_request: {case}",
                "value": round(_cpu_us(contract.check_request, method, url, headers, body)),
                "unit": "CPU us/call",
            }
        )
    answer = json.dumps(CREATED)
    rows.append(
        {
            "case": "response_problems: deliverr create order 201",
            "value": round(
                _cpu_us(
                    DELIVERR.response_problems,
                    "POST",
                    f"{_DELIVERR}/orders/v1/order",
                    201,
                    _JSON,
                    answer.encode(),
                )
            ),
            "unit": "CPU us/call",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_table

    print_table(run())
