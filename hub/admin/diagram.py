"""An SVG drawing of the order state machine, laid out from its own description."""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 170, 44, 90, 40, 30


def _ranks(states: list[str], initial: str, edges: list[dict[str, Any]]) -> dict[str, int]:
    """Longest-path layering from the initial state (self-loops ignored)."""
    rank = {s: 0 for s in states}
    for _ in states:
        for e in edges:
            if e["source"] != e["dest"]:
                rank[e["dest"]] = max(rank[e["dest"]], rank[e["source"]] + 1)
    rank[initial] = 0
    return rank


def state_machine_svg(machine: dict[str, Any], current: str | None = None) -> str:
    """The machine as SVG; `current`, when given, is drawn marked (a thick outline and a
    darker fill) and named in the drawing's title."""
    states: list[str] = machine["states"]
    edges: list[dict[str, Any]] = machine["transitions"]
    terminal = set(machine["terminal"])
    rank = _ranks(states, machine["initial"], edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for s in states:
        columns[rank[s]].append(s)
    pos: dict[str, tuple[int, int]] = {}
    for r, column in columns.items():
        for i, s in enumerate(column):
            pos[s] = (MARGIN + r * (BOX_W + GAP_X), MARGIN + i * (BOX_H + GAP_Y) + 20)
    width = MARGIN * 2 + (max(columns) + 1) * (BOX_W + GAP_X)
    height = MARGIN * 2 + max(len(c) for c in columns.values()) * (BOX_H + GAP_Y) + 40
    title = "Order state machine" + (f"; this order is {current}" if current else "")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for e in edges:
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["dest"]]
        label = e["trigger"] + (f" [{e['guard']}]" if e.get("guard") else "")
        if e["source"] == e["dest"]:
            cx = x1 + BOX_W // 2
            parts.append(
                f'<path d="M{cx - 20},{y1} C{cx - 30},{y1 - 30} {cx + 30},{y1 - 30} {cx + 20},{y1}"'
                ' fill="none" stroke="#555" marker-end="url(#arrow)"/>'
                f'<text x="{cx}" y="{y1 - 26}" text-anchor="middle">{escape(label)}</text>'
            )
            continue
        sx, sy = x1 + BOX_W, y1 + BOX_H // 2
        tx, ty = x2, y2 + BOX_H // 2
        parts.append(
            f'<line x1="{sx}" y1="{sy}" x2="{tx}" y2="{ty}" stroke="#555" '
            'marker-end="url(#arrow)"/>'
            f'<text x="{(sx + tx) // 2}" y="{(sy + ty) // 2 - 4}" text-anchor="middle" '
            f'fill="#333">{escape(label)}</text>'
        )
    for s, (x, y) in pos.items():
        fill = "#e8f0fe" if s not in terminal else "#eeeeee"
        stroke_w = 3 if s == machine["initial"] else 1
        marked = s == current
        if marked:
            fill, stroke_w = "#ffd866", 4
        css = "state current" if marked else "state"
        parts.append(
            f'<g class="{css}" id="state-{escape(s)}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="8" fill="{fill}" stroke="#333" stroke-width="{stroke_w}"/>'
            f'<text x="{x + BOX_W // 2}" y="{y + BOX_H // 2 + 4}" text-anchor="middle">'
            f"{escape(s)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
