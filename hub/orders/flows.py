"""How each channel's orders begin: which calls the channel expects before the hub may ship,
and what happens to an order the hub cannot fulfil."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelFlow:
    calls_acknowledge: bool  # the channel has an acknowledge call (topi)
    calls_accept: bool  # the channel has an accept call (topi)
    rejects_unfulfillable: bool  # False: the buyer already paid (Depop), so flag, never reject


FLOWS: dict[str, ChannelFlow] = {
    # Paid on arrival, no acknowledge or accept call: confirmed at once; an order without
    # stock stays and is flagged for a person to restock or refund.
    "depop": ChannelFlow(calls_acknowledge=False, calls_accept=False, rejects_unfulfillable=False),
    # The seller acknowledges, then accepts or rejects each order.
    "topi": ChannelFlow(calls_acknowledge=True, calls_accept=True, rejects_unfulfillable=True),
    # Delegated dropshipping orders: no acknowledge call; unfulfillable items are cancelled.
    # An item ABOUT YOU cancels later loses its line and stock; if the order already went to
    # the 3PL, which cannot drop one line, the order is flagged (service.cancel_lines).
    "aboutyou": ChannelFlow(
        calls_acknowledge=False, calls_accept=False, rejects_unfulfillable=True
    ),
}

# A channel not listed above is treated as the strictest: every call made, nothing assumed.
DEFAULT_FLOW = ChannelFlow(calls_acknowledge=True, calls_accept=True, rejects_unfulfillable=True)


def flow_for(channel: str) -> ChannelFlow:
    return FLOWS.get(channel, DEFAULT_FLOW)
