"""The debrief's charts as inline SVG markup: a page with no script can show them, Chromium
prints them into the PDF, and `majlis debrief --png` photographs each one.

The viewer draws the same score chart with its own script (from the same
`standing_scores` data); these are drawn here because the debrief has no script. Every
piece of text is escaped; colours are used only if they are plain #rrggbb.
"""

from __future__ import annotations

import html
import re
from typing import Any

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
W, L, R, T = 720, 120, 16, 16
LANES = (
    ("inject", "scenario events"),
    ("proposal", "proposals"),
    ("tally", "votes"),
    ("turning_point", "turning points"),
    ("tag", "facilitator's tags"),
)


def color(value: str) -> str:
    return value if _COLOR.match(value) else "#555555"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _svg(chart_id: str, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_e(chart_id)}" class="chart-svg" '
        f'width="{W}" height="{height}" viewBox="0 0 {W} {height}" role="img" '
        f'aria-label="{_e(label)}"><rect width="{W}" height="{height}" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )


def score_chart(chart: dict[str, Any], parties: list[dict[str, str]]) -> str:  # long: one drawing
    """Each party's score of the standing proposal at the end of each round, its walk-away
    point dashed; `chart` is viewer.standing_scores, `parties` [{id, name, color}]."""
    rows = legend_rows(parties)
    rounds, left, bottom = chart["rounds"], 44, 72 + 18 * rows
    height = 240 + bottom
    ymax = max(1, chart["ymax"])
    n = len(rounds)

    def x(i: int) -> float:
        return (left + W - R) / 2 if n <= 1 else left + i * (W - left - R) / (n - 1)

    def y(v: float) -> float:
        return height - bottom - v / ymax * (height - T - bottom)

    body = []
    step = max(1, -(-ymax // 50) * 10)
    for v in range(0, ymax + 1, step):
        body.append(
            f'<line x1="{left}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e4e8"/>'
        )
        body.append(_text(left - 6, y(v) + 4, v, "end"))
    base = height - bottom
    body.append(f'<line x1="{left}" x2="{W - R}" y1="{base}" y2="{base}" stroke="#888"/>')
    body.append(f'<line x1="{left}" x2="{left}" y1="{T}" y2="{base}" stroke="#888"/>')
    for i, r in enumerate(rounds):
        body.append(_text(x(i), base + 16, r, "middle"))
    body.append(_text((left + W - R) / 2, base + 32, "round", "middle"))
    for p in parties:
        c, vals = color(p["color"]), chart["series"].get(p["id"], [])
        t = chart["thresholds"].get(p["id"], 0)
        body.append(
            f'<line x1="{left}" x2="{W - R}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{c}" '
            f'stroke-dasharray="4 4" opacity="0.6"/>'
        )
        points = [(x(i), y(v)) for i, v in enumerate(vals) if v is not None]
        if len(points) > 1:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
            body.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2.5"/>')
        body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{c}"/>' for a, b in points]
    body += _legend(parties, height - bottom + 46)
    return _svg(
        "chart-scores", height, "Each party's score of the standing proposal by round", body
    )


def _legend(parties: list[dict[str, str]], top: int) -> list[str]:
    """A swatch and name per party, in rows as wide as the chart, then the key to the
    dashes. The names' widths are estimated (no font metrics here), generously."""
    out, at, row = [], 44.0, top
    for p in parties:
        wide = 30 + 7.5 * len(p["name"])
        if at + wide > W - R and at > 44:
            at, row = 44.0, row + 18
        out.append(
            f'<rect x="{at:.1f}" y="{row}" width="12" height="12" fill="{color(p["color"])}"/>'
        )
        out.append(_text(at + 17, row + 10, p["name"], "start", 12))
        at += wide
    out.append(_text(44, row + 28, "dashed: each party's walk-away point", "start", 11))
    return out


def legend_rows(parties: list[dict[str, str]]) -> int:
    rows, at = 1, 44.0
    for p in parties:
        wide = 30 + 7.5 * len(p["name"])
        if at + wide > W - R and at > 44:
            at, rows = 44.0, rows + 1
        at += wide
    return rows


def timeline_chart(
    items: list[dict[str, Any]], rounds: list[int], colors: dict[str, str]
) -> str:  # long: one drawing
    """Lanes of injects, proposals, votes, turning points and tags across the rounds; each
    mark is numbered with its event (#), as the transcript is."""
    cols = sorted(set(rounds) | {i["round"] for i in items}) or [1]
    lanes = [k for k, _ in LANES if any(i["kind"] == k for i in items)] or ["proposal"]
    lane_h, top = 50, T + 18
    height = top + lane_h * len(lanes) + 34
    width = (W - L - R) / len(cols)
    body = []
    for j, r in enumerate(cols):
        x0 = L + j * width
        body.append(
            f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{T}" y2="{height - 26}" stroke="#e4e4e8"/>'
        )
        body.append(_text(x0 + width / 2, T + 6, f"round {r}" if r > 0 else "start", "middle"))
    for k, kind in enumerate(lanes):
        y0 = top + k * lane_h + lane_h / 2
        body.append(_text(L - 8, y0 + 4, dict(LANES)[kind], "end", 12))
        body.append(f'<line x1="{L}" x2="{W - R}" y1="{y0:.1f}" y2="{y0:.1f}" stroke="#ececf0"/>')
        for j, r in enumerate(cols):
            here = [i for i in items if i["kind"] == kind and i["round"] == r]
            for n, item in enumerate(here):
                cx = L + j * width + width * (n + 1) / (len(here) + 1)
                body.append(_mark(item | {"place": n}, cx, y0, colors))
    key = "proposals in the proposer's colour; votes green if passed, red if failed"
    body.append(_text(L, height - 8, key, "start", 11))
    return _svg("chart-timeline", height, "Timeline of the session", body)


def _mark(item: dict[str, Any], cx: float, cy: float, colors: dict[str, str]) -> str:
    kind, fill = item["kind"], "#8a7bb8"
    if kind == "inject":
        fill = "#d9a400"
    elif kind == "proposal":
        fill = color(colors.get(str(item.get("party")), ""))
    elif kind == "tally":
        fill = "#1b7837" if item.get("passed") else "#b2182b"
    elif kind == "turning_point":
        fill = "#1b7837"
    shape = (
        f'<rect x="{cx - 6:.1f}" y="{cy - 6:.1f}" width="12" height="12" fill="{fill}" '
        f'transform="rotate(45 {cx:.1f} {cy:.1f})"/>'
        if kind in ("inject", "turning_point")
        else f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6.5" fill="{fill}"/>'
    )
    title = f"<title>#{_e(item['seq'])} {_e(item['label'])}</title>"
    above = item.get("place", 0) % 2 == 0  # neighbours' numbers alternate above and below
    label = _text(cx, cy - 10 if above else cy + 19, "#" + str(item["seq"]), "middle", 10)
    return f"<g>{title}{shape}{label}</g>"


def _text(x: float, y: float, text: object, anchor: str, size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'font-family="sans-serif" fill="#444">{_e(text)}</text>'
    )
