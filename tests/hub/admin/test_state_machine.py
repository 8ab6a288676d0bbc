"""`GET /admin/state-machine`: the states and transitions, as JSON and as SVG, from the Machine."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from state_machines.order import OrderState, Trigger, machine
from tests.harness import Hub

from .conftest import error, ok

SVG = "{http://www.w3.org/2000/svg}"


def edges_of_the_machine() -> set[tuple[str, str, str]]:
    return {
        (trigger, source, str(t.dest))
        for trigger, event in machine.events.items()
        for source, transitions in event.transitions.items()
        for t in transitions
    }


def test_json_lists_every_state_and_every_transition_of_the_machine(hub: Hub) -> None:
    described = ok(hub.admin("GET", "/admin/state-machine"))

    assert described["states"] == [s.value for s in OrderState]
    assert described["initial"] == "created"
    assert set(described["terminal"]) == {"completed", "rejected", "cancelled"}
    edges = {(t["trigger"], t["source"], t["dest"]) for t in described["transitions"]}
    assert edges == edges_of_the_machine()
    guards = {
        (t["source"], t["dest"]): t["guard"]
        for t in described["transitions"]
        if t["trigger"] == "ship"
    }
    assert guards[("confirmed", "completed")] == "all_lines_shipped"
    assert guards[("confirmed", "partially_fulfilled")] == "not all_lines_shipped"


def test_svg_is_xml_naming_every_state_and_every_trigger(hub: Hub) -> None:
    response = hub.admin("GET", "/admin/state-machine", params={"format": "svg"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    boxes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "state"]
    assert sorted(g.get("id", "") for g in boxes) == sorted(f"state-{s.value}" for s in OrderState)
    for state in OrderState:
        assert state.value in texts
    for trigger in Trigger:
        assert any(t.split(" ")[0] == trigger.value for t in texts), trigger
    arrows = [e for e in root.iter() if e.get("marker-end") == "url(#arrow)"]
    assert len(arrows) == len(edges_of_the_machine())


def test_state_machine_needs_the_admin_token_and_a_known_format(hub: Hub) -> None:
    error(hub.client.get("/admin/state-machine"), 401, "unauthenticated")
    error(hub.admin("GET", "/admin/state-machine", params={"format": "png"}), 422)
