"""Charts drawn on the server as inline SVG: no script, no library from a CDN, nothing a PHI page
fetches from a third party, and a page that reads the same with JavaScript off.

Each function takes plain numbers and labels (never the store) and returns markup for a
template. Every label and title is escaped; a chart with nothing to show says so in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

# One palette for the whole workspace (colour-blind safe: Okabe and Ito's).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _number(value) -> float:
    if value is None:
        return 0.0
    return float(value)


def _label(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{float(value) * 100:.1f}%"
    if unit == "$":
        return f"${float(value):,.2f}"
    if isinstance(value, (int, Decimal)) or float(value).is_integer():
        return f"{float(value):,.0f}{unit}"
    return f"{float(value):,.1f}{unit}"


def _empty(title: str) -> Markup:
    return Markup('<p class="chart-empty">{}: nothing to show yet</p>').format(title)


def bars(items: Sequence[tuple[str, object]], *, title: str, unit: str = "", width: int = 520) -> Markup:
    """Horizontal bars, one per ``(label, value)``, each with its value written beside it."""
    if not items:
        return _empty(title)
    row, left, right = 22, 150, 110
    height = row * len(items) + 8
    top = max((_number(v) for _, v in items), default=0.0) or 1.0
    span = width - left - right
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        length = max(0.0, _number(value)) / top * span
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" fill="{COLOURS[0]}"/>'
                     f'<text x="{left + length + 6:.1f}" y="{y + 15}">{escape(_label(value, unit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked(rows: Sequence[tuple[str, Sequence[object]]], keys: Sequence[str], *, title: str,
            unit: str = "$", width: int = 620) -> Markup:
    """One horizontal bar per row, split into ``keys`` (A/R aging by payer: a payer's balance by
    age bucket), with a legend. Each piece carries its value in a ``<title>`` (hover)."""
    if not rows:
        return _empty(title)
    row, left, right = 24, 150, 130
    legend = 22
    height = legend + row * len(rows) + 8
    totals = [sum(_number(v) for v in values) for _, values in rows]
    top = max(totals) or 1.0
    span = width - left - right
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(title)}</title>"]
    x = left
    for k, key in enumerate(keys):
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="13" class="legend">{escape(key)}</text>')
        x += 14 + 8 * len(key) + 14
    for i, ((label, values), total) in enumerate(zip(rows, totals)):
        y = legend + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        x = float(left)
        for k, value in enumerate(values):
            length = max(0.0, _number(value)) / top * span
            if length > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
                             f'fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(keys[k])}: '
                             f'{escape(_label(value, unit))}</title></rect>')
            x += length
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{escape(_label(total, unit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: Sequence[tuple[str, object]], *, title: str, unit: str = "", width: int = 520,
         height: int = 170) -> Markup:
    """A line over ``(label, value)`` points in order (a month, a date); a missing value (None: no
    claims that month) breaks the line rather than drawing a zero. The last value is written."""
    known = [_number(v) for _, v in points if v is not None]
    if not known:
        return _empty(title)
    left, right, top_pad, bottom = 46, 60, 12, 28
    top = max(known) or 1.0
    if unit == "%":
        top = max(top, 1.0) if top > 0.5 else top * 1.25
    else:
        top *= 1.1
    step = (width - left - right) / max(1, len(points) - 1)
    span = height - top_pad - bottom

    def y_of(value: float) -> float:
        return top_pad + span - value / top * span

    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{left}" y1="{top_pad + span}" x2="{width - right}" y2="{top_pad + span}" class="axis"/>',
             f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end" class="tick">{escape(_label(top, unit))}</text>',
             f'<text x="{left - 4}" y="{top_pad + span}" text-anchor="end" class="tick">0</text>']
    path: list[str] = []
    for i, (label, value) in enumerate(points):
        x = left + i * step
        if i == 0 or i == len(points) - 1 or len(points) <= 6 or i % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" class="tick">{escape(label)}</text>')
        if value is None:
            if len(path) > 1:
                parts.append(f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="2" points="{" ".join(path)}"/>')
            path = []
            continue
        y = y_of(_number(value))
        path.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[0]}">'
                     f"<title>{escape(label)}: {escape(_label(value, unit))}</title></circle>")
    if len(path) > 1:
        parts.append(f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="2" points="{" ".join(path)}"/>')
    last = next((v for _, v in reversed(points) if v is not None), None)
    parts.append(f'<text x="{width - right + 6}" y="{top_pad + 12}" class="last">{escape(_label(last, unit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- from the hub's JSON to a chart's items (shape only: every value is the hub's own) ---------


def pipeline_items(pipeline: Sequence[dict]) -> list[tuple[str, object]]:
    """``status_counts`` as bars: the statuses that hold claims, in pipeline order."""
    return [(p["status"].replace("_", " "), p["claims"]) for p in pipeline if p["claims"]]


def aging_rows(by_payer: dict, buckets: Sequence[str]) -> list[tuple[str, list]]:
    """``ar_report``'s aging by payer as one row per payer: insurance + patient per bucket."""
    return [(payer, [_number(cells[b]["insurance"]) + _number(cells[b]["patient"]) for b in buckets])
            for payer, cells in sorted(by_payer.items())]


def trend_points(months: Sequence[dict], key: str) -> list[tuple[str, object]]:
    """One figure of ``monthly_figures`` as line points, oldest month first."""
    return [(m["month"], m["figures"].get(key)) for m in months]


def burn_points(authorization: dict) -> list[tuple[str, object]]:
    """An authorization's burn-down: what was left after each date of service, from the start."""
    points = [(str(authorization.get("start") or ""), authorization.get("authorized"))]
    points += [(str(p["date"]), p["remaining"]) for p in authorization.get("burn_down") or []]
    return points
