"""The comparison report: one self-contained HTML page with inline SVG plots, plus side-by-side pages.

No scripts and no network: a strict Content-Security-Policy that allows only the page's own
style block, by hash. All text is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from pathlib import Path

from .comparison import (
    Comparison,
    MetricResult,
    branch_counts,
    cross_play_csv,
    group_runs,
    runs_csv,
    to_csv,
    to_markdown,
)
from .crossplay import CrossPlay
from .sidebyside import side_by_side_body

PALETTE = ["#1b7837", "#2166ac", "#b2182b", "#8c510a", "#762a83", "#e08214", "#01665e", "#c51b7d"]
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
th{background:#f4f4f4}.note{color:#555;font-size:.9em}svg{display:block;margin:.5rem 0}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.msg{margin:.3rem 0;padding:.3rem .5rem;
border-left:4px solid #ccc;background:#fafafa}.who{font-weight:600}.round{font-weight:700;margin-top:1rem}
.inject{background:#fff4d6;border-left-color:#e0a800}
.sbs{width:100%;table-layout:fixed}.sbs td,.sbs th{vertical-align:top}.sbs th:first-child{width:11rem}
.sbs tr.round th{background:#e8e8e8}.moves{font-size:.85em;color:#444}.side{border-left-color:#762a83;
background:#f5eef8}.verdict{font-size:1.05rem;font-weight:600}.parting th,.parting td{background:#ffe9e6;
border:2px solid #b2182b}.mark{color:#b2182b;font-weight:700}
"""


def _page(title: str, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; form-action 'none'"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _e(x: object) -> str:
    return html.escape(str(x))


def strip_plot(
    groups: dict[str, list[float]],
    means: dict[str, tuple[float | None, float | None, float | None]],
    width: int = 700,
) -> str:
    """Each group a row: its runs as dots, its mean as a bar with the 95% interval as a line."""
    values = [v for vs in groups.values() for v in vs] or [0.0]
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    left, right, row = 230, width - 20, 34
    height = row * len(groups) + 30

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [
        f'<svg width="{width}" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (g, vs) in enumerate(groups.items()):
        y = 20 + i * row
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="4" y="{y + 4}" font-size="12">{_e(g)}</text>')
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#eee"/>')
        for v in vs:
            parts.append(
                f'<circle cx="{x(v):.1f}" cy="{y}" r="4" fill="{colour}" fill-opacity="0.55"/>'
            )
        mean, low, high = means[g]
        if low is not None and high is not None:
            parts.append(
                f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y + 9}" y2="{y + 9}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        if mean is not None:
            parts.append(
                f'<rect x="{x(mean) - 1.5:.1f}" y="{y - 10}" width="3" height="22" fill="#000"/>'
            )
    axis = height - 8
    parts.append(f'<text x="{left}" y="{axis}" font-size="11">{lo:.3g}</text>')
    parts.append(f'<text x="{right}" y="{axis}" font-size="11" text-anchor="end">{hi:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_report(
    c: Comparison, folder: Path, view: Callable[[Path], Path] | None = None
) -> list[Path]:
    """report.html, summary.md, comparison.csv, runs.csv and side-by-side pages under folder/.
    With `view` (a run folder in, the path of the transcript page it wrote out), each run in
    the report links to its page; the caller brings the viewer, which sits a layer above."""
    folder.mkdir(parents=True, exist_ok=True)
    links = _views(c, folder, view) if view else {}
    body = [
        f"<h1>Comparison by {_e(c.by)}</h1>",
        f"<p>{len(c.rows)} finished runs; baseline <b>{_e(c.baseline)}</b>. Dots are runs, the black bar the "
        "mean, the coloured line its 95% bootstrap interval. Tests are exact paired sign-flip tests on runs "
        "that share a seed and the other factors.</p>",
    ]
    if c.cross_play is not None:
        body.append(_leaderboard(c.cross_play))
    body.append(_deal_rate(c))
    body.append(_branches(c))
    for r in c.results:
        body += _metric_section(c, r)
    body.append(_transcripts(c, links))
    pages = _side_by_side(c, folder)
    if pages:
        body.append("<h2>Side by side, same seed</h2><ul>")
        body += [
            f'<li><a href="{_e(p.name)}">{_e(label)}</a>: {_e(summary)}</li>'
            for label, p, summary in pages
        ]
        body.append("</ul>")
    written = [
        folder / "report.html",
        folder / "summary.md",
        folder / "comparison.csv",
        folder / "runs.csv",
    ]
    written[0].write_text(_page("majlis comparison", "".join(body)), encoding="utf-8")
    written[1].write_text(to_markdown(c), encoding="utf-8")
    written[2].write_text(to_csv(c), encoding="utf-8")
    written[3].write_text(runs_csv(c), encoding="utf-8")
    if c.cross_play is not None:
        written.append(folder / "crossplay.csv")
        written[-1].write_text(cross_play_csv(c.cross_play), encoding="utf-8")
    return written + [p for _, p, _ in pages]


def _metric_section(c: Comparison, r: MetricResult) -> list[str]:
    """One metric: its strip plot, its table of groups and paired tests, the differences."""
    out: list[str] = []
    groups = {
        g: [row.values[r.metric] for row in rows if row.values[r.metric] is not None]
        for g, rows in group_runs(c).items()
    }
    means = {g: (iv.mean, iv.low, iv.high) for g, iv in r.groups.items()}
    out.append(f"<h2>{_e(r.metric)}</h2>")
    out.append(strip_plot(groups, means))
    out.append(
        "<table><tr><th>group</th><th>n</th><th>mean</th><th>95% CI</th><th>paired diff</th>"
        "<th>p</th><th>effect size</th><th>note</th></tr>"
    )
    for g, iv in r.groups.items():
        t = r.paired.get(f"{g} vs {c.baseline}")
        ci = "-" if iv.low is None else f"[{iv.low:.3g}, {iv.high:.3g}]"
        cells = [
            g,
            iv.n,
            "-" if iv.mean is None else f"{iv.mean:.3g}",
            ci,
            "-" if not t or t.mean_diff is None else f"{t.mean_diff:+.3g}",
            "-" if not t or t.p_value is None else f"{t.p_value:.3g}",
            "-" if not t or t.effect_size is None else f"{t.effect_size:.2f}",
            t.note if t else "baseline",
        ]
        out.append("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in cells) + "</tr>")
    out.append("</table>")
    if r.diffs:
        out.append('<p class="note">Paired differences (variant minus baseline):</p>')
        out.append(strip_plot(r.diffs, {k: (t.mean_diff, None, None) for k, t in r.paired.items()}))
    return out


def _transcripts(c: Comparison, links: dict[str, str]) -> str:
    """The table of runs, each linked to its transcript page when there is one."""
    out: list[str] = []
    out.append(
        "<h2>Transcripts</h2><table><tr><th>run</th><th>variant</th><th>model</th><th>seed</th></tr>"
    )
    for row in c.rows:
        link = links.get(row.run_id)
        name = f'<a href="{_e(link)}">{_e(row.run_id)}</a>' if link else _e(row.run_id)
        out.append(
            f"<tr><td>{name}</td><td>{_e(row.variant)}</td><td>{_e(row.model)}</td>"
            f"<td>{row.seed}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _leaderboard(cp: CrossPlay) -> str:
    """The cross-play ratings, best first, and each member's mean result in each seat."""
    rows = "".join(
        f"<tr><td>{i}</td><td>{_e(r.member)}</td>"
        + "".join(f"<td>{_e(x)}</td>" for x in r.shown())
        + f"<td>{r.comparisons}</td><td>{r.wins:g}</td></tr>"
        for i, r in enumerate(cp.ratings, 1)
    )
    head = "".join(f"<th>{_e(m)}</th>" for m in cp.members)
    matrix = "".join(
        f"<tr><td>{_e(p)}</td>"
        + "".join(f"<td>{_e(c.shown())}</td>" for c in row.values())
        + "</tr>"
        for p, row in cp.matrix.items()
    )
    return (
        f"<h2>Cross-play leaderboard</h2><p class=note>{_e(cp.describe())}.</p>"
        "<table><tr><th>#</th><th>member</th><th>rating</th>"
        f"<th>{cp.level:.0%} CI</th><th>comparisons</th><th>wins</th></tr>{rows}</table>"
        "<h2>Seat by member</h2><p class=note>Each member's mean result in each seat: its "
        "margin over the walk-away point, over the party's score spread (n sessions).</p>"
        f"<table><tr><th>seat</th>{head}</tr>{matrix}</table>"
    )


def _deal_rate(c: Comparison) -> str:
    """Bars: the share of each group's runs that ended in a deal."""
    rates = {
        g: sum(r.values.get("deal") or 0 for r in rows) / len(rows)
        for g, rows in group_runs(c).items()
    }
    width, left, row = 760, 230, 30
    parts = [
        f'<h2>Deal rate</h2><svg width="{width}" height="{row * len(rates) + 10}" role="img" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (g, rate) in enumerate(rates.items()):
        y = 5 + i * row
        parts.append(f'<text x="4" y="{y + 15}" font-size="12">{_e(g)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{rate * (width - left - 60):.1f}" height="20" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        parts.append(
            f'<text x="{left + rate * (width - left - 60) + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{rate:.0%}</text>"
        )
    return "".join(parts) + "</svg>"


def _branches(c: Comparison) -> str:
    """A table: how many of each group's runs ended in each of the scenario's branches."""
    labels, counts = branch_counts(c)
    head = "".join(f"<th>{_e(label)}</th>" for label in labels.values())
    rows = []
    for g, by in counts.items():
        total = sum(by.values()) or 1
        cells = "".join(f"<td>{n} ({n / total:.0%})</td>" for n in by.values())
        rows.append(f"<tr><td>{_e(g)}</td>{cells}</tr>")
    return (
        "<h2>Outcome branches</h2><p class=note>Runs of each group filed under each of the "
        "scenario's branches.</p>"
        f"<table><tr><th>group</th>{head}</tr>{''.join(rows)}</table>"
    )


def _views(c: Comparison, folder: Path, view: Callable[[Path], Path]) -> dict[str, str]:
    """A page for every transcript, linked relative to the report."""
    out = {}
    for row in c.rows:
        path = view(row.path)
        out[row.run_id] = str(Path("..", path.relative_to(folder.parent)))
    return out


def _side_by_side(c: Comparison, folder: Path) -> list[tuple[str, Path, str]]:
    """For each pair sharing a seed, the baseline and the other group's moves aligned slot by
    slot, the first slot where they differ marked: (label, page, where they part)."""
    groups = group_runs(c)
    base = {
        (r.model if c.by == "variant" else r.variant, r.seed): r for r in groups.get(c.baseline, [])
    }
    pages = []
    for g, rows in groups.items():
        if g == c.baseline:
            continue
        for r in rows:
            partner = base.get((r.model if c.by == "variant" else r.variant, r.seed))
            if partner is None:
                continue
            label = (
                f"{g} vs {c.baseline}, {r.model if c.by == 'variant' else r.variant}, seed {r.seed}"
            )
            path = folder / f"side-by-side--{r.run_id}.html"
            body, summary = side_by_side_body(partner.path, r.path)
            path.write_text(_page(label, f"<h1>{_e(label)}</h1>{body}"), encoding="utf-8")
            pages.append((label, path, summary))
    return pages


def side_by_side_page(left: Path, right: Path, title: str) -> str:
    """A self-contained page of two runs aligned slot by slot, where they part marked
    (`sidebyside`): the left run is the baseline."""
    return _page(title, f"<h1>{_e(title)}</h1>{side_by_side_body(left, right)[0]}")
