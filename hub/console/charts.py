"""Small bar charts drawn on the server as inline SVG: no script, no library, readable by a
screen reader through the summary in their label."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 12, 26


def bar_chart(title: str, points: Sequence[tuple[str, int]], *, every: int = 6) -> str:
    """Bars for `points` (label, value), labelling every `every`-th bar on the axis; the
    summary in the label says the total and the peak, so the chart needs no eyes."""
    values = [value for _, value in points]
    peak = max(values, default=0)
    total = sum(values)
    peak_at = points[values.index(peak)][0] if points and peak else None
    summary = f"{title}: {total} in all" + (f", most ({peak}) at {peak_at}" if peak_at else "")
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points))
    scale = plot_h / peak if peak else 0.0
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary)}</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#555"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="11" '
        f'fill="#333">{peak}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="11" '
        'fill="#333">0</text>',
    ]
    for i, (label, value) in enumerate(points):
        bar_h = value * scale
        x = LEFT + i * step + 1
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - bar_h:.1f}" width="{max(1.0, step - 2):.1f}" '
            f'height="{bar_h:.1f}" fill="#2f5f98"><title>{escape(label)}: {value}</title></rect>'
        )
        if i % every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
                f'font-size="11" fill="#333">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
