"""Server-rendered SVG charts for the dashboard: stacked bars over time, one colour per series. No script,
no web font, nothing loaded from elsewhere."""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f")
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 220, 70, 28


def stacked_bars(title: str, buckets: list[int], series: dict[str, dict[int, float]], unit: str) -> str:
    """``series``: name → bucket start (epoch s) → value. One bar per bucket, the series stacked in it."""
    names = list(series)
    totals = [sum(series[name].get(bucket, 0.0) for name in names) for bucket in buckets]
    top = max(totals, default=0.0) or 1.0
    slot = (WIDTH - LEFT) / max(len(buckets), 1)
    scale = (HEIGHT - BOTTOM - 10) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{HEIGHT + 20 * len(names)}"'
             f' aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="0" y="12" font-size="11">{escape(_number(top))} {escape(unit)}</text>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" stroke="#888"/>']
    base: float
    for index, bucket in enumerate(buckets):
        x, base = LEFT + index * slot + 2, HEIGHT - BOTTOM
        for colour, name in zip(_cycle(len(names)), names):
            value = series[name].get(bucket, 0.0)
            if value:
                height = value * scale
                base -= height
                parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{max(slot - 4, 1):.1f}" height="{height:.1f}" '
                             f'fill="{colour}"><title>{escape(name)}: {escape(_number(value))} {escape(unit)}</title>'
                             '</rect>')
        if index % max(len(buckets) // 8, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="10">{_label(bucket)}</text>')
    for row, (colour, name) in enumerate(zip(_cycle(len(names)), names)):
        y = HEIGHT + 20 * row
        parts.append(f'<rect x="{LEFT}" y="{y}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{LEFT + 18}" y="{y + 11}" font-size="12">{escape(name)}</text>')
    return "".join(parts) + "</svg>"


def _cycle(count: int) -> list[str]:
    return [COLOURS[i % len(COLOURS)] for i in range(count)]


def _label(bucket: int) -> str:
    return datetime.fromtimestamp(bucket, timezone.utc).strftime("%m-%d %H:%M")


def _number(value: float) -> str:
    return f"{value:,.4f}" if value < 1 else f"{value:,.0f}"
