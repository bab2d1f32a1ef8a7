"""The offline transcript viewer: one self-contained HTML file per run and audience.

The page makes no network request of any kind. Its CSS and JS are inlined and allowed by
the Content-Security-Policy only through their sha256 hashes; the run's data travels as
JSON in a `<script type="application/json">` block with `<`, `>` and `&` escaped, and the
script builds the page with createElement and textContent, so model text is never parsed
as HTML.

Two audiences:

- `facilitator`: everything, plus private reasoning, side messages, failed turns, each
  party's hidden scores and threshold, a chart of each party's score of the standing
  proposal by round, and the facilitator's annotations.
- `participant`: only what the whole room saw. The data is filtered here, before it is
  embedded, so nothing private is in the file at all: events whose audience is not "all"
  are dropped, cards keep only their public fields, and the outcome keeps no scores.

`majlis serve` renders the facilitator view with `editable=True`: a second script
(editor.js, never in a written file) adds tag controls, and the CSP gains `connect-src
'self'` so that script may post tags back to the server that served the page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import UserError
from ..files import write_text_atomic
from ..run import RunDir, children_of, load_snapshot
from ..scenario import AgentCard, LoadedScenario
from .tags import TAGS
from .timeline import timeline
from .turns import packed, turn_contexts

Audience = Literal["facilitator", "participant"]
AUDIENCES: tuple[str, ...] = ("facilitator", "participant")

PUBLIC_CARD_FIELDS = ("id", "name", "role", "color", "public_stance", "veto")
PRIVATE_TYPES = frozenset({"private_note", "side_message", "error"})
PUBLIC_EVENT_FIELDS = ("seq", "round", "type", "speaker", "audience", "content", "ts")
ANNOTATION_FIELDS = ("seq", "id", "tag", "note", "author", "ts")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ASSETS = "viewer_assets"


# ---------------------------------------------------------------------------------------
# Public API


def render_html(
    run_dir: Path,
    audience: Audience = "facilitator",
    annotations: list[dict[str, Any]] | None = None,
    *,
    editable: bool = False,
    token: str | None = None,
) -> str:
    """One complete, self-contained HTML document showing the run to `audience`.

    `editable` (facilitator only, with the server's write `token`) is for pages that
    `majlis serve` hands out; a file on disk must never hold a token or network code.
    """
    data = build_data(Path(run_dir), audience, annotations)
    if editable:
        if audience != "facilitator" or not token:
            raise ValueError("an editable view is a facilitator view with a write token")
        data["served"] = {"token": token, "tags": list(TAGS)}
    return page(data)


def write_html(
    run_dir: Path,
    audience: Audience = "facilitator",
    out_path: Path | None = None,
    *,
    annotations: list[dict[str, Any]] | None = None,
) -> Path:
    """Render the run and write it atomically; by default to run_dir/view-<audience>.html."""
    run_dir = Path(run_dir)
    text = render_html(run_dir, audience, annotations)
    out = Path(out_path) if out_path is not None else run_dir / f"view-{audience}.html"
    write_text_atomic(out, text)
    return out


# ---------------------------------------------------------------------------------------
# The data the page shows, filtered for its audience


def build_data(
    run_dir: Path, audience: str, annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything the page embeds. For participants, nothing private is in it."""
    if audience not in AUDIENCES:
        raise UserError(f"unknown audience {audience!r} (choose facilitator or participant)")
    facilitator = audience == "facilitator"
    rd = RunDir.open(run_dir)
    manifest = rd.read_manifest()
    loaded = load_snapshot(rd)
    events, cut = rd.read_events()
    events = sorted(events, key=lambda e: e.get("seq", 0))
    outcome = rd.read_outcome()
    s = loaded.scenario

    run: dict[str, Any] = {
        "id": manifest.run_id,
        "status": manifest.status,
        "created": manifest.created,
        "finished": manifest.finished,
        "rounds": manifest.rounds,
    }
    data: dict[str, Any] = {
        "audience": audience,
        "run": run,
        "events_cut": cut,
        "scenario": {
            "id": s.id,
            "title": s.title,
            "brief": s.brief,
            "convener": s.convener,
            "agenda": [
                {
                    "id": i.id,
                    "title": i.title,
                    "description": i.description,
                    "options": [
                        {"id": o.id, "label": o.label, "description": o.description}
                        for o in i.options
                    ],
                }
                for i in s.agenda
            ],
            "deal_rule": s.deal_rule.model_dump(),
            # the futures the outcome may be filed under, in words (their rules stay out)
            "branches": [
                {"id": b.id, "label": b.label, "description": b.description} for b in s.branches
            ],
        },
    }
    party_ids = [p for p in s.parties if p in loaded.cards]
    if facilitator:
        run["seed"] = manifest.seed
        run["error"] = manifest.error
        run["models"] = {p: m.model for p, m in manifest.parties.items()}
        run.update(lineage(rd, manifest))
        data["parties"] = [_private_card(loaded, p) for p in party_ids]
        data["events"] = events
        data["outcome"] = outcome.model_dump() if outcome else None
        data["annotations"] = _annotations(annotations)
        data["chart"] = standing_scores(loaded, events)
        data["contexts"] = packed(turn_contexts(loaded, manifest, events))
        data["proposal_scores"] = {
            str(e["seq"]): {
                p: package_score(loaded.cards[p], e["content"]["package"]) for p in party_ids
            }
            for e in events
            if e.get("type") == "proposal" and isinstance(e.get("content", {}).get("package"), dict)
        }
    else:
        data["parties"] = [_public_card(loaded.cards[p]) for p in party_ids]
        data["events"] = [_public_event(e) for e in events if _is_public(e)]
        data["outcome"] = _public_outcome(outcome.model_dump()) if outcome else None
    data["timeline"] = timeline(loaded, data["events"], data.get("annotations") or [], facilitator)
    for card in data["parties"]:  # who played each party is no secret: say it plainly
        played = manifest.parties.get(card["id"])
        card["played_by"] = played.played_by if played else "model"
    return data


def lineage(rd: RunDir, manifest: Any) -> dict[str, Any]:
    """The run a fork comes from and the forks made from this run beside it, each as its
    id and fork point: the facilitator's header links them (the page builds the address)."""
    out: dict[str, Any] = {"parent": None, "children": []}
    if manifest.parent is not None:
        out["parent"] = {"id": manifest.parent.run_id, "seq": manifest.parent.seq}
    for _child, m in children_of(rd.path):
        assert m.parent is not None  # children_of finds runs by their parent
        out["children"].append({"id": m.run_id, "seq": m.parent.seq})
    return out


def _is_public(event: dict[str, Any]) -> bool:
    return event.get("audience") == "all" and event.get("type") not in PRIVATE_TYPES


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: event[k] for k in PUBLIC_EVENT_FIELDS if k in event}
    out["content"] = {k: v for k, v in (event.get("content") or {}).items() if k != "attempts"}
    return out


def _public_card(card: AgentCard) -> dict[str, Any]:
    out = {k: getattr(card, k) for k in PUBLIC_CARD_FIELDS}
    out["color"] = _safe_color(card.color)
    return out


def _private_card(loaded: LoadedScenario, party: str) -> dict[str, Any]:
    card = loaded.cards[party]
    out = _public_card(card)
    out.update(
        private_brief=card.private_brief,
        private_interests=list(card.private_interests),
        red_lines=[r.model_dump() for r in card.red_lines],
        scores=card.scores,
        threshold=card.threshold,
        max_score=loaded.max_score(party),
    )
    return out


def _public_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    """What the room knows at the end: the result and the last votes, never anyone's score."""
    keep = ("kind", "branch", "deal_round", "package", "last_proposal", "rounds_used")
    out = {k: outcome.get(k) for k in keep}
    out["parties"] = {p: {"vote": r.get("vote")} for p, r in (outcome.get("parties") or {}).items()}
    return out


def _annotations(annotations: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for a in annotations or []:
        try:
            seq = int(a["seq"])
        except (KeyError, TypeError, ValueError):
            continue
        item: dict[str, Any] = {"seq": seq}
        for k in ANNOTATION_FIELDS[1:]:
            v = a.get(k)
            item[k] = "" if v is None else str(v)
        out.append(item)
    return out


def _safe_color(color: str) -> str:
    return color if _COLOR.match(color) else "#555555"


def package_score(card: AgentCard, package: dict[str, Any]) -> int:
    """A party's hidden score of a (possibly partial) package."""
    return sum(card.scores.get(issue, {}).get(opt, 0) for issue, opt in package.items() if opt)


def standing_scores(loaded: LoadedScenario, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Each party's score of the standing proposal (the latest one made) at the end of each round."""
    parties = [p for p in loaded.scenario.parties if p in loaded.cards]
    rounds = sorted(
        {e["round"] for e in events if isinstance(e.get("round"), int) and e["round"] >= 1}
    )
    standing_by_round: dict[int, dict[str, Any] | None] = {}
    standing: dict[str, Any] | None = None
    for e in events:
        package = (e.get("content") or {}).get("package")
        if e.get("type") == "proposal" and isinstance(package, dict):
            standing = {"seq": e["seq"], "package": package}
        if isinstance(e.get("round"), int):
            standing_by_round[e["round"]] = standing
    series: dict[str, list[int | None]] = {p: [] for p in parties}
    for r in rounds:
        st = standing_by_round.get(r)
        for p in parties:
            series[p].append(package_score(loaded.cards[p], st["package"]) if st else None)
    return {
        "rounds": rounds,
        "standing": [st["seq"] if (st := standing_by_round.get(r)) else None for r in rounds],
        "series": series,
        "thresholds": {p: loaded.cards[p].threshold for p in parties},
        "ymax": max((loaded.max_score(p) for p in parties), default=0),
    }


# ---------------------------------------------------------------------------------------
# The page


def asset(name: str) -> str:
    return resources.files("majlis.workshop").joinpath(_ASSETS, name).read_text(encoding="utf-8")


def csp_hash(block: str) -> str:
    """The CSP source expression allowing exactly this inline block."""
    digest = hashlib.sha256(block.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def embed_json(data: Any) -> str:
    """JSON that cannot close its <script> element or start markup: <, > and & escaped."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _inline(name: str, closing: str) -> str:
    block = "\n" + asset(name)
    if closing in block.lower():
        raise ValueError(f"{name} contains {closing}")
    return block


def _csp(css: str, scripts: list[str], connect: bool = False) -> str:
    parts = ["default-src 'none'"]
    if scripts:
        parts.append("script-src " + " ".join(csp_hash(js) for js in scripts))
    if connect:
        parts.append("connect-src 'self'")
    parts += [
        f"style-src {csp_hash(css)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    return "; ".join(parts)


def _head(title: str, csp: str, css: str, extra: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{extra}<title>{html.escape(title)}</title>\n"
        f"<style>{css}</style>\n"
        "</head>\n<body>\n"
    )


def page(data: dict[str, Any]) -> str:
    css = _inline("viewer.css", "</style")
    scripts = [_inline("viewer.js", "</script")]
    if data.get("served"):
        scripts.append(_inline("editor.js", "</script"))
    title = f"{data['scenario']['title']} · {data['run']['id']} · {data['audience']}"
    audience = f'<meta name="majlis-audience" content="{html.escape(data["audience"])}">\n'
    return (
        _head(title, _csp(css, scripts, connect=bool(data.get("served"))), css, audience)
        + "<noscript><p>This transcript is drawn by JavaScript: "
        + "allow scripts for this file to read it.</p></noscript>\n"
        + '<div id="app"></div>\n'
        + f'<script type="application/json" id="majlis-data">{embed_json(data)}</script>\n'
        + "".join(f"<script>{js}</script>\n" for js in scripts)
        + "</body>\n</html>\n"
    )


def static_page(title: str, body: str) -> str:
    """A page with no script at all, styled like the viewer: for the run index and the
    debrief. `body` is markup the caller has already escaped."""
    css = _inline("viewer.css", "</style")
    return _head(title, _csp(css, []), css) + f'<div id="app">\n{body}</div>\n</body>\n</html>\n'
