"""Run majlis's benchmarks, print a table of the figures and write them to results.json.

    python -m benchmarks                  # overhead, scaling (1/10/100/500), context, caching,
                                          # startup, adaptive
    python -m benchmarks --quick          # fewer repeats, scaling up to 100 sessions
    python -m benchmarks --embedded       # also the embedded model (minutes)
    python -m benchmarks --only caching,context
    python -m benchmarks --only first-session   # `majlis run` as a new user meets it (minutes)
    python -m benchmarks --only startup   # CPU time of `majlis --help`, `validate`, ...
    python -m benchmarks --only tracing   # CPU per model call, OpenTelemetry traces off and on
    python -m benchmarks --only adaptive  # concurrency auto against fixed, at a rate limit
    python -m benchmarks --table benchmarks/results.json   # the table of an earlier run

Run it from the repository root with the virtualenv active. Timings depend on the machine
and on whatever else it is doing: the load average at the start and the end is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import REPO, machine

ALL = (
    "overhead",
    "scaling",
    "context",
    "caching",
    "embedded",
    "first-session",
    "startup",
    "adaptive",
    "tracing",
)
DEFAULT = ("overhead", "scaling", "context", "caching", "startup", "adaptive")


def run_one(name: str, quick: bool) -> dict[str, Any]:
    """One benchmark's results, as they read back from JSON (keys are strings)."""
    return json.loads(json.dumps(_run_one(name, quick)))


def _run_one(name: str, quick: bool) -> dict[str, Any]:
    if name == "overhead":
        from . import overhead

        return overhead.run(quick)
    if name == "scaling":
        from . import scaling

        return scaling.run(quick)
    if name == "context":
        from . import context_growth

        return context_growth.run(quick)
    if name == "caching":
        from . import caching

        return caching.run(quick)
    if name == "embedded":
        from . import embedded_model

        return embedded_model.run(quick)
    if name == "first-session":
        from . import first_session

        return first_session.run(quick)
    if name == "startup":
        from . import startup

        return startup.run(quick)
    if name == "tracing":
        from . import tracing

        return tracing.run(quick)
    if name == "adaptive":
        from . import adaptive

        return adaptive.run(quick)
    raise ValueError(name)


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(benchmark, figure, value, goal and verdict) for the table."""
    out: list[tuple[str, str, str, str]] = []
    for name, res in results.items():
        if "error" in res:
            out.append((name, "failed", "", res["error"][:60]))
    results = {k: v for k, v in results.items() if "error" not in v}
    o = results.get("overhead")
    if o:
        m, g = o["marginal"], o["goals"]
        lat = f"{o['latency_s'] * 1000:.0f} ms"
        out += [
            (
                "overhead",
                f"session wall / bare replay ({o['rounds']} rounds, {lat} latency)",
                f"{o['harness_wall_s']:.2f} s / {o['bare_wall_s']:.2f} s = {o['wall_ratio']:.3f}x",
                f"<= 1.05x: {_mark(g['wall_ratio<=1.05'])}",
            ),
            ("overhead", "  steady state (set-up excluded)", f"{m['steady_wall_ratio']:.3f}x", ""),
            (
                "overhead",
                "harness CPU per move, all in (per call)",
                f"{o['harness_cpu_ms_per_move']:.2f} ms ({o['harness_cpu_ms_per_call']:.2f} ms)",
                f"<= 5 ms: {_mark(g['cpu_ms_per_move<=5'])}",
            ),
            (
                "overhead",
                "  marginal per move (per call)",
                f"{m['harness_cpu_ms_per_move']:.2f} ms ({m['harness_cpu_ms_per_call']:.2f} ms)",
                f"<= 5 ms: {_mark(g['marginal_cpu_ms_per_move<=5'])}",
            ),
            (
                "overhead",
                "  in process, no HTTP: per move (per call), fixed",
                f"{o['in_process']['cpu_ms_per_move']:.2f} ms "
                f"({o['in_process']['cpu_ms_per_call']:.2f} ms), "
                f"{o['in_process']['cpu_fixed_s'] * 1000:.0f} ms",
                f"<= 5 ms: {_mark(g['in_process_cpu_ms_per_move<=5'])}",
            ),
            (
                "overhead",
                "  fixed per session: CPU, wall",
                f"{m['harness_cpu_fixed_s'] * 1000:.0f} ms, {m['extra_wall_fixed_s'] * 1000:.0f} ms",
                "",
            ),
        ]
    s = results.get("scaling")
    if s:
        for r in s["rows"]:
            if "efficiency" not in r:
                out.append(("scaling", f"{r['sessions']:>3} sessions", "failed", r["error"]))
                continue
            goal = ""
            if r["sessions"] == 100:
                goal = f">= 0.9: {_mark(s['goals']['efficiency@100>=0.9'])}"
            value = (
                f"{r['sessions_per_s']:.2f} sessions/s ({r['calls_per_s']:.0f} calls/s), "
                f"{r['efficiency']:.2f} of ideal"
            )
            if r.get("workers", 1) > 1:
                value += f" in {r['workers']} workers"
            if "one_process_efficiency" in r:
                value += f" ({r['one_process_efficiency']:.2f} in one process)"
            if "bare_efficiency" in r:
                value += f"; bare SDK {r['bare_efficiency']:.2f}"
            if "bare_workers_efficiency" in r:
                value += f" ({r['bare_workers_efficiency']:.2f} over {r['workers']} processes)"
            if "server_busy" in r:
                value += f", server CPU {r['server_busy']:.0%}"
            if "mb_per_session" in r:
                value += f", {r['mb_per_session']:.1f} MB/session"
            where = f"{r['sessions']:>3} sessions x {s['rounds']} rounds, "
            where += f"{s['latency_s'] * 1000:.0f} ms latency"
            out.append(("scaling", where, value, goal))
    c = results.get("context")
    if c:
        full, win, g = c["full"], c["window:2"], c["goals"]
        out += [
            (
                "context",
                "move prompt, round 3 -> 12, full (chars/4)",
                f"{full['prompt_tokens_by_round']['3']} -> "
                f"{full['prompt_tokens_by_round'].get(str(c['rounds']), '?')} "
                f"({full['round12_over_round3']}x)",
                "",
            ),
            (
                "context",
                "move prompt, round 3 -> 12, window:2 (chars/4)",
                f"{win['prompt_tokens_by_round']['3']} -> "
                f"{win['prompt_tokens_by_round'].get(str(c['rounds']), '?')} "
                f"({win['round12_over_round3']}x)",
                f"<= 1.5x: {_mark(g['window_round12<=1.5x_round3'])}",
            ),
            (
                "context",
                "window:2 keeps the facts a party needs",
                "yes" if g["window_keeps_facts"] else "no",
                f"all: {_mark(g['window_keeps_facts'])}",
            ),
        ]
        if c.get("tokenizer"):
            out.append(
                (
                    "context",
                    "  same in SmolLM2 tokens: full, window:2",
                    f"{full['smollm2_round12_over_round3']}x, "
                    f"{win['smollm2_round12_over_round3']}x",
                    "",
                )
            )
    k = results.get("caching")
    if k:
        full, g = k["full"], k["goals"]
        last = list(full["mean_share_by_round"].values())[-1]
        out += [
            (
                "caching",
                "full: prompt share that prefixes the party's last",
                f"{full['mean_share']:.3f} mean, {full['min_share']:.3f} min, {last:.3f} last round",
                f">= 0.9: {_mark(g['full_mean_prefix_share>=0.9'])}",
            ),
            (
                "caching",
                "  most any prefix cache could reuse",
                f"{full['mean_reusable_share']:.3f} (all of the last prompt's record reused "
                f"in {full['calls_reusing_all_of_previous_record']:.0%} of calls)",
                "",
            ),
            (
                "caching",
                "  leaving out events new since the last call",
                f"{full.get('mean_share_of_repeatable', float('nan')):.3f} of the rest "
                f"(new events: {full.get('new_events_share', float('nan')):.3f} of a prompt)",
                "",
            ),
            *(
                [
                    (
                        "caching",
                        "full, a twelve-round session",
                        f"{k['full_12_rounds']['mean_share']:.3f} mean, "
                        f"{k['full_12_rounds']['weighted_share']:.3f} by tokens",
                        "",
                    )
                ]
                if "full_12_rounds" in k
                else []
            ),
            (
                "caching",
                "window:2: prefix share",
                f"{k['window:2']['mean_share']:.3f} mean",
                "",
            ),
            (
                "caching",
                "server's cached_tokens in events and outcome",
                f"{full['cached_tokens_in_events']} of {full['cached_tokens_reported_by_server']}",
                f"recorded: {_mark(g['transcript_carries_cached_tokens'])}",
            ),
        ]
    e = results.get("embedded")
    if e:
        se, b = e["session"], e["bare"]
        out += [
            (
                "embedded",
                "tokens/s, 1-round session vs bare llama.cpp",
                f"{se['tokens_per_s_end_to_end']:.1f} vs {b['tokens_per_s']:.1f} "
                f"= {e['ratio_end_to_end']:.3f}x",
                f">= 0.9x: {_mark(e['goals']['tokens_per_s>=0.9x_bare'])}",
            ),
            (
                "embedded",
                "  generation alone (inside the server)",
                f"{se['tokens_per_s_generating']:.1f} tokens/s = {e['ratio_generating']:.3f}x",
                "",
            ),
        ]
        t = e.get("three_round_session")
        if t:
            out.append(
                (
                    "embedded",
                    "six parties, three rounds: wall time",
                    f"{t['wall_s']:.0f} s ({t['calls']} calls, {t['completion_tokens']} tokens out)",
                    "",
                )
            )
    f = results.get("first-session")
    if f:
        out += first_session_rows(f)
    if results.get("startup"):
        from .startup import rows as startup_rows

        out += startup_rows(results["startup"])
    if results.get("tracing"):
        from .tracing import rows as tracing_rows

        out += tracing_rows(results["tracing"])
    if results.get("adaptive"):
        from .adaptive import rows as adaptive_rows

        out += adaptive_rows(results["adaptive"])
    return out


def _num(x: float | None, fmt: str = ".1f", unit: str = " s") -> str:
    return "none" if x is None else f"{x:{fmt}}{unit}"


def _session(s: dict[str, Any]) -> str:
    """One session's wall time and what it did, as one table cell."""
    if s.get("timed_out"):
        head = f"timed out after {s['wall_s']:.0f} s"
    else:
        head = f"{s['wall_s']:.{0 if s['wall_s'] >= 10 else 1}f} s, exit {s['exit_code']}"
    if s.get("run_folder") is None:
        return f"{head}: {(s.get('stderr_last_line') or 'no run folder')[:60]}"
    load = f"load {s['load_average_at_start'][0]} -> {s['load_average_at_end'][0]}"
    return (
        f"{head}, {s.get('rounds_used')} rounds, {s.get('kind')}, {s.get('calls')} calls, "
        f"{s.get('completion_tokens')} tokens out, {s.get('failed_turns')} failed turns; {load}"
    )


def first_session_rows(f: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The first-session benchmark's rows: what a new user waits for, and what they read."""
    name, g, d = "first-session", f["goals"], f["sessions"]["default"]
    out: list[tuple[str, str, str, str]] = []
    if f.get("extra_args"):
        out.append(
            (name, "extra arguments (not the embedded default)", " ".join(f["extra_args"]), "")
        )
    party = f" ({f['first_turn_party']})" if f.get("first_turn_party") else ""
    out += [
        (
            name,
            "`majlis run`: time to the first visible turn",
            _num(f["first_turn_s"]) + party,
            f"<= 20 s: {_mark(g['first_turn_s<=20'])}",
        ),
        (name, "  whole session", _session(d), f"<= 240 s: {_mark(g['wall_s<=240'])}"),
    ]
    if "loaded" in f:
        lo, s = f["loaded"], f["sessions"]["loaded"]
        timeouts = "a timeout among them" if lo["timeout_in_errors"] else "no timeout"
        out += [
            (
                name,
                f"  with every core busy ({lo['hogs']} hogs)",
                _session(s),
                f"completes: {_mark(g['loaded_completes_without_timeout'])}",
            ),
            (
                name,
                "    status, error events",
                f"{lo['status']}, {lo['error_events']} ({timeouts})",
                "",
            ),
        ]
    p = f["prompt_tokens_round1"]
    ratio = p["full_over_default"]
    out.append(
        (
            name,
            f"prompt tokens per call, round 1: full vs default ({p['default_profile']})",
            f"{_num(p['full_per_call'], '.0f', '')} vs {_num(p['default_per_call'], '.0f', '')}"
            + (f" = {ratio:.2f}x" if ratio else f" (full: exit {p['full_exit_code']})"),
            "",
        )
    )
    r = f["readable"]
    out.append(
        (
            name,
            f"public messages that read as sentences ({', '.join(r['sessions'])})",
            f"{_num(r['share'], '.3f', '')} ({r['readable']} of {r['messages']})",
            f">= 0.95: {_mark(g['readable_share>=0.95'])}",
        )
    )
    w = f["wrong_deal_ratio"]
    cells = []
    for k in ("full_llm", "narrated"):
        if k in w:
            x = w[k]
            of = f" ({x['wrong']} of {x['backed']})" if x["backed"] is not None else ""
            cells.append(f"{_num(x['ratio'], '.3f', '')}{of}")
    label = "wrong-deal ratio, all parties: full LLM" + (", narrated" if "narrated" in w else "")
    out.append((name, label, ", ".join(cells), ""))
    if "narrated" in f:
        n = f["narrated"]
        out.append(
            (
                name,
                "  narrated session (--narrate all): wall, readable",
                f"{_session(f['sessions']['narrated'])}; readable {_num(n['readable_share'], '.3f', '')}",
                "",
            )
        )
    return out


def table(results: dict[str, Any]) -> str:
    data = rows(results)
    if not data:
        return "(no results)"
    heads = ("benchmark", "figure", "value", "goal")
    widths = [max(len(h), *(len(r[i]) for r in data)) for i, h in enumerate(heads)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*heads), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in data]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats; scaling up to 100")
    ap.add_argument("--embedded", action="store_true", help="also the embedded model (minutes)")
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(ALL)}")
    ap.add_argument("--out", type=Path, help="JSON file (default benchmarks/results.json)")
    ap.add_argument("--table", type=Path, metavar="JSON", help="print the table of a results file")
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text(encoding="utf-8"))["results"]))
        return 0
    names = [n.strip() for n in args.only.split(",")] if args.only else list(DEFAULT)
    if args.embedded and "embedded" not in names:
        names.append("embedded")
    unknown = [n for n in names if n not in ALL]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(ALL)})")
    out_path = args.out or REPO / "benchmarks" / "results.json"
    started = time.time()
    report: dict[str, Any] = {
        "command": ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "note": "Wall and CPU times depend on the machine and on its other load; compare "
        "figures from one run, and read the load averages.",
        "results": {},
    }
    if args.only and out_path.exists():  # a partial run updates the file's other results
        with contextlib.suppress(ValueError, KeyError):
            earlier = json.loads(out_path.read_text(encoding="utf-8"))
            report["results"] = earlier["results"]
            report["earlier_runs"] = [
                *earlier.get("earlier_runs", []),
                {k: earlier.get(k) for k in ("command", "started", "quick", "machine")},
            ]
    for name in names:
        print(f"== {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            report["results"][name] = run_one(name, args.quick)
        except Exception as exc:  # keep the others' figures
            report["results"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"   {name} failed: {exc}", flush=True)
        report["results"][name]["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"   done in {time.perf_counter() - t0:.0f} s", flush=True)
    report["duration_s"] = round(time.time() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    m = report["machine"]
    print()
    print(
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}; load average "
        f"{m['load_average_at_start']} at start, {report['load_average_at_end']} at end"
    )
    print(table(report["results"]))
    print(f"\nwritten to {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
