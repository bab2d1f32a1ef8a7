// majlis transcript viewer. Everything is built with createElement and textContent:
// no text from the run is ever parsed as HTML.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("majlis-data").textContent);
  var FAC = DATA.audience === "facilitator";
  var SVG = "http://www.w3.org/2000/svg";

  var TYPE_NAMES = {
    round: "round",
    inject: "scenario event",
    message: "public message",
    side_message: "side message",
    proposal: "proposal",
    private_note: "private reasoning",
    vote: "vote",
    tally: "tally",
    error: "failed turn",
    outcome: "outcome",
  };

  // ---------------------------------------------------------------- helpers

  function h(tag, attrs) {
    var el = document.createElement(tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }

  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") el.setAttribute("class", v);
      else if (k === "text") el.textContent = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    });
  }

  function add(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { add(el, c); });
    } else if (typeof child === "object") {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }

  var PARTIES = {};
  DATA.parties.forEach(function (p) { PARTIES[p.id] = p; });
  var ISSUES = {};
  DATA.scenario.agenda.forEach(function (issue) {
    var labels = {};
    issue.options.forEach(function (o) { labels[o.id] = o.label; });
    ISSUES[issue.id] = { issue: issue, labels: labels };
  });

  var BRANCHES = Object.create(null);  // no inherited keys: an id is only ever a branch
  (DATA.scenario.branches || []).forEach(function (b) { BRANCHES[b.id] = b; });

  // A branch in the scenario's words; an id the scenario does not define, as words.
  function branchName(id) {
    return BRANCHES[id] ? BRANCHES[id].label : String(id).replace(/_/g, " ");
  }

  function branchEl(id) {
    var b = BRANCHES[id];
    return h("strong", { class: "branch", text: branchName(id), title: b && b.description ? b.description : null });
  }

  function partyName(id) {
    if (id === "facilitator") return "Facilitator";
    return PARTIES[id] ? PARTIES[id].name : String(id);
  }

  function colored(el, id) {
    if (PARTIES[id]) el.style.setProperty("--c", PARTIES[id].color);
    return el;
  }

  function chip(id) {
    return colored(h("span", { class: "party", "data-party": id, text: partyName(id) }), id);
  }

  function chips(ids) {
    var out = [];
    (ids || []).forEach(function (id, i) {
      if (i) out.push(", ");
      out.push(chip(id));
    });
    return out.length ? out : ["none"];
  }

  function issueTitle(id) { return ISSUES[id] ? ISSUES[id].issue.title : String(id); }

  function optionLabel(issueId, optId) {
    if (optId === null || optId === undefined) return "no agreement";
    var i = ISSUES[issueId];
    return i && i.labels[optId] ? i.labels[optId] : String(optId);
  }

  function para(text, cls) { return h("p", { class: cls || "text", text: text }); }

  // An issue-by-option table: every option of every issue, the chosen one marked.
  function packageTable(pkg) {
    pkg = pkg || {};
    var width = 0;
    DATA.scenario.agenda.forEach(function (i) { width = Math.max(width, i.options.length); });
    var rows = [];
    DATA.scenario.agenda.forEach(function (issue) {
      if (!(issue.id in pkg)) return;
      var chosen = pkg[issue.id];
      var cells = [h("th", { scope: "row", text: issue.title + (chosen === null ? " (no agreement)" : "") })];
      issue.options.forEach(function (o, n) {
        var last = n === issue.options.length - 1;
        cells.push(h("td", {
          class: "opt" + (o.id === chosen ? " chosen" : ""),
          colspan: last && issue.options.length < width ? width - n : null,
          "data-option": o.id,
          title: o.description || null,
          text: o.label,
        }));
      });
      rows.push(h("tr", { "data-issue": issue.id }, cells));
    });
    Object.keys(pkg).forEach(function (k) {  // issues the agenda does not know
      if (ISSUES[k]) return;
      rows.push(h("tr", null, h("th", { scope: "row", text: k }), h("td", { text: String(pkg[k]) })));
    });
    return h("table", { class: "pkg" }, h("tbody", null, rows));
  }

  // Issue -> option label, two columns (positions, agreed items).
  function positionsTable(pos) {
    var rows = Object.keys(pos || {}).map(function (k) {
      return h("tr", null, h("th", { scope: "row", text: issueTitle(k) }), h("td", { text: optionLabel(k, pos[k]) }));
    });
    return h("table", { class: "positions" }, h("tbody", null, rows));
  }

  // ---------------------------------------------------------------- page parts

  function header() {
    var run = DATA.run;
    var bits = [run.id];
    if (run.created) bits.push(run.created.replace("T", " ").replace("+00:00", " UTC"));
    bits.push("status: " + run.status);
    if (run.rounds) bits.push(run.rounds + " rounds planned");
    return h("header", { class: "top" },
      h("h1", { text: DATA.scenario.title }),
      h("p", { class: "meta" }, bits.join(" · "), " ",
        h("span", { class: "badge audience", "data-audience": DATA.audience, text: DATA.audience + " view" })),
      FAC ? lineage(run) : null);
  }

  // Where another run's facilitator view is: the server's page when served, else the file
  // `majlis view` writes in that run's folder, beside this one.
  function runHref(id) {
    var name = encodeURIComponent(String(id));
    return DATA.served ? "/runs/" + name + "/facilitator" : "../" + name + "/view-facilitator.html";
  }

  function runLink(r) {
    return [h("a", { class: "run-link", href: runHref(r.id), text: String(r.id) }), " at #" + r.seq];
  }

  // A fork's parent and this run's forks, as links.
  function lineage(run) {
    var out = [];
    if (run.parent) out.push(h("p", { class: "meta", id: "fork-parent" }, "Forked from ", runLink(run.parent)));
    if ((run.children || []).length) {
      out.push(h("p", { class: "meta", id: "fork-children" }, "Forks: ",
        run.children.map(function (c, i) { return [i ? ", " : "", runLink(c)]; })));
    }
    return out;
  }

  function notices() {
    var out = [];
    if (!DATA.outcome) {
      out.push(h("div", { class: "notice", id: "no-outcome" },
        h("strong", { text: "No outcome: " }),
        "this run has no outcome.json, so it was interrupted or is still running (status: " + DATA.run.status + ")."));
    }
    if (DATA.events_cut) {
      out.push(h("div", { class: "notice", id: "events-cut",
        text: "The last line of events.jsonl was cut (the writer stopped mid-line) and is not shown." }));
    }
    if (FAC && DATA.run.error) out.push(h("div", { class: "notice", text: "Run error: " + DATA.run.error }));
    return out;
  }

  function situation() {
    var sc = DATA.scenario;
    var dr = sc.deal_rule;
    var agenda = sc.agenda.map(function (issue) {
      return h("li", null, h("strong", { text: issue.title }),
        issue.description ? [" ", h("span", { class: "muted", text: issue.description })] : null,
        h("ul", null, issue.options.map(function (o) {
          return h("li", null, h("span", { text: o.label }),
            o.description ? [": ", h("span", { class: "muted", text: o.description })] : null);
        })));
    });
    return h("section", { class: "panel", id: "situation" },
      h("h2", { text: "Situation" }),
      h("div", { class: "brief" }, String(sc.brief).split(/\n\s*\n/).map(function (p) {
        return h("p", { text: p.replace(/\s+/g, " ").trim() });
      })),
      h("p", null, "Deal rule: a package passes with at least " + dr.min_accept + " acceptances, including every veto party (",
        chips(dr.veto), "). At most " + dr.max_rounds + " rounds."),
      h("details", { id: "agenda" }, h("summary", { text: "Agenda: " + sc.agenda.length + " issues" }), h("ul", null, agenda)));
  }

  function partyCards() {
    var cards = DATA.parties.map(function (p) {
      return colored(h("div", { class: "card", "data-party": p.id },
        h("div", null, h("span", { class: "party", text: p.name }), p.veto ? h("span", { class: "badge veto", text: "veto" }) : null,
          p.played_by === "narrated" ? h("span", { class: "badge narrated", text: "narrated",
            title: "Moves and votes decided by the scripted negotiator; only the words came from the model." }) : null,
          p.played_by === "human" ? h("span", { class: "badge narrated", text: "played by a person" }) : null),
        h("div", { class: "role", text: p.role }),
        p.public_stance ? h("p", { class: "stance text", text: p.public_stance }) : null), p.id);
    });
    var narrated = DATA.parties.filter(function (p) { return p.played_by === "narrated"; });
    var note = narrated.length ? h("p", { class: "narrated-note", id: "narrated-note",
      text: "Narrated: " + narrated.map(function (p) { return p.name; }).join(", ") +
        ". Their moves and votes were decided by majlis's scripted negotiator from their scores; the model only wrote their words." }) : null;
    return h("section", { class: "panel", id: "parties" }, h("h2", { text: "Parties" }), note, h("div", { class: "cards" }, cards));
  }

  function outcomePanel() {
    var o = DATA.outcome;
    if (!o) return null;
    var kinds = { deal: "Deal", partial: "Partial deal", none: "No deal" };
    var head = [h("span", { class: "kind-" + o.kind, text: kinds[o.kind] || o.kind })];
    if (o.deal_round) head.push(" in round " + o.deal_round);
    head.push(" · future: ", branchEl(o.branch));
    head.push(" · " + o.rounds_used + " rounds used");
    var future = BRANCHES[o.branch];
    var rows = DATA.parties.map(function (p) {
      var r = (o.parties || {})[p.id] || {};
      var cells = [h("th", { scope: "row" }, chip(p.id)),
        h("td", { class: r.vote ? "vote-" + r.vote : "muted", text: r.vote || "—" })];
      if (FAC) {
        cells.push(h("td", { class: "num", text: r.score }), h("td", { class: "num", text: r.threshold }),
          h("td", { class: "num " + (r.margin >= 0 ? "pos" : "neg"), text: (r.margin > 0 ? "+" : "") + r.margin }));
      }
      return h("tr", { "data-party": p.id }, cells);
    });
    var cols = ["Party", "Last vote"];
    if (FAC) cols = cols.concat(["Score", "Threshold", "Margin"]);
    var extra = null;
    if (FAC) {
      var u = o.usage || {};
      extra = h("p", { class: "muted", text: o.calls + " model calls, " + o.failed_turns + " failed turns, " +
        (u.prompt_tokens || 0) + " prompt and " + (u.completion_tokens || 0) + " completion tokens." });
    }
    return h("section", { class: "panel", id: "outcome", "data-kind": o.kind },
      h("h2", { text: "Outcome" }),
      h("p", { class: "headline" }, head),
      future && future.description ? h("p", { class: "branch-description text", text: future.description }) : null,
      h("h3", { text: o.kind === "deal" ? "Agreed package" : "Agreement issue by issue" }),
      packageTable(o.package),
      h("h3", { text: FAC ? "Each party's score of the outcome" : "Last votes" }),
      h("table", { class: "results" }, h("thead", null, h("tr", null, cols.map(function (c) { return h("th", { text: c }); }))),
        h("tbody", null, rows)),
      extra);
  }

  function hiddenScores() {
    var width = 0;
    DATA.scenario.agenda.forEach(function (i) { width = Math.max(width, i.options.length); });
    var blocks = DATA.parties.map(function (p) {
      var red = {};
      (p.red_lines || []).forEach(function (rl) { red[rl.issue + "/" + rl.option] = rl.why || "red line"; });
      var rows = DATA.scenario.agenda.map(function (issue) {
        var table = (p.scores || {})[issue.id] || {};
        return h("tr", null, h("th", { scope: "row", text: issue.title }), issue.options.map(function (o, n) {
          var key = issue.id + "/" + o.id;
          var last = n === issue.options.length - 1;
          return h("td", {
            class: key in red ? "redline" : null,
            title: key in red ? "Red line: " + red[key] : null,
            colspan: last && issue.options.length < width ? width - n : null,
          }, o.label + ": ", h("strong", { class: "score", text: table[o.id] }));
        }));
      });
      return colored(h("details", { class: "hidden-card", "data-party": p.id },
        h("summary", null, chip(p.id), " · walk-away threshold ", h("strong", { text: p.threshold }),
          " of a best possible " + p.max_score),
        h("table", { class: "scores" }, h("tbody", null, rows)),
        h("details", null, h("summary", { text: "Private brief, interests and red lines" }),
          para(p.private_brief),
          (p.private_interests || []).length ? h("ul", null, p.private_interests.map(function (t) { return h("li", { text: t }); })) : null,
          (p.red_lines || []).length ? h("ul", null, p.red_lines.map(function (rl) {
            return h("li", null, "Red line: " + issueTitle(rl.issue) + " = " + optionLabel(rl.issue, rl.option) + (rl.why ? ": " + rl.why : ""));
          })) : null)), p.id);
    });
    return h("section", { class: "panel", id: "hidden-scores" },
      h("h2", { text: "Hidden scores (facilitator only)" }),
      h("p", { class: "muted", text: "Each party's score of every option; underlined: a red line." }), blocks);
  }

  function scoreChart() {
    var c = DATA.chart;
    var sec = h("section", { class: "panel chart", id: "chart" },
      h("h2", { text: "Each party's score of the standing proposal, by round" }));
    if (!c || !c.rounds.length || c.standing.every(function (x) { return x === null; })) {
      sec.appendChild(para("No proposal was made.", "muted"));
      return sec;
    }
    var W = 720, H = 280, L = 44, R = 16, T = 14, B = 34;
    var n = c.rounds.length;
    var ymax = Math.max(1, c.ymax);
    function x(i) { return n === 1 ? (L + W - R) / 2 : L + (i * (W - L - R)) / (n - 1); }
    function y(v) { return H - B - (v / ymax) * (H - T - B); }
    var step = Math.max(1, Math.ceil(ymax / 5 / 10) * 10);
    var svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "Score of the standing proposal by round" });
    for (var v = 0; v <= ymax; v += step) {
      svg.appendChild(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: v }));
    }
    svg.appendChild(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    svg.appendChild(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    c.rounds.forEach(function (r, i) {
      svg.appendChild(s("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", text: r }));
    });
    svg.appendChild(s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", text: "round" }));
    (DATA.timeline || []).forEach(function (it) {  // scenario events and deals, where they fell
      var i = c.rounds.indexOf(it.round);
      if (i < 0 || !(it.kind === "inject" || (it.kind === "tally" && it.passed))) return;
      svg.appendChild(s("line", { class: "marker marker-" + it.kind, x1: x(i), x2: x(i), y1: T, y2: H - B },
        s("title", { text: "Round " + it.round + ": " + it.label })));
    });
    DATA.parties.forEach(function (p) {
      var vals = c.series[p.id] || [];
      var g = s("g", { class: "series", "data-party": p.id });
      g.appendChild(s("line", { x1: L, x2: W - R, y1: y(c.thresholds[p.id]), y2: y(c.thresholds[p.id]),
        stroke: p.color, "stroke-width": 1, "stroke-dasharray": "4 4", opacity: 0.6 },
        s("title", { text: p.name + " walk-away threshold: " + c.thresholds[p.id] })));
      var run = [];
      function flush() {
        if (run.length > 1) {
          g.appendChild(s("polyline", { points: run.join(" "), fill: "none", stroke: p.color, "stroke-width": 2 }));
        }
        run = [];
      }
      vals.forEach(function (val, i) {
        if (val === null || val === undefined) { flush(); return; }
        run.push(x(i) + "," + y(val));
        g.appendChild(s("circle", { cx: x(i), cy: y(val), r: 3.5, fill: p.color },
          s("title", { text: p.name + ", round " + c.rounds[i] + ": " + val + " (threshold " + c.thresholds[p.id] + ")" })));
      });
      flush();
      svg.appendChild(g);
    });
    var legend = h("div", { class: "legend" }, DATA.parties.map(function (p) { return chip(p.id); }),
      h("span", { class: "muted", text: "dashed: walk-away threshold" }));
    sec.appendChild(svg);
    sec.appendChild(legend);
    return sec;
  }

  // ---------------------------------------------------------------- events

  var NOTES = {};
  (DATA.annotations || []).forEach(function (a) { (NOTES[a.seq] = NOTES[a.seq] || []).push(a); });

  function eventBody(e) {
    var c = e.content || {};
    switch (e.type) {
      case "round":
        return [para(c.text), c.order ? h("p", { class: "muted" }, "Speaking order: ", chips(c.order)) : null];
      case "inject":
        return [h("div", { class: "title", text: "Scenario event: " + (c.title || c.id) }), para(c.text)];
      case "message":
        return [para(c.text), c.positions && Object.keys(c.positions).length
          ? h("details", null, h("summary", { text: "Stated positions" }), positionsTable(c.positions)) : null];
      case "side_message":
        return [para(c.text)];
      case "proposal":
        var scores = FAC && DATA.proposal_scores ? DATA.proposal_scores[e.seq] : null;
        return [packageTable(c.package), scores ? h("p", { class: "muted proposal-scores" }, "Scores: ",
          DATA.parties.map(function (p, i) {
            var sc = scores[p.id];
            return [i ? ", " : "", chip(p.id), " " + sc + (sc >= p.threshold ? " ✓" : " ✗")];
          })) : null];
      case "private_note":
        return [para(c.reasoning), c.private_positions
          ? h("details", null, h("summary", { text: "Private positions" }), positionsTable(c.private_positions)) : null];
      case "vote":
        return [h("p", null, h("span", { class: "vote-" + c.vote, text: c.vote }), " on proposal #" + c.proposal_seq)];
      case "tally":
        var n = (c.accept || []).length;
        return [h("p", null, "Vote on proposal #" + c.proposal_seq + ": ",
          h("span", { class: c.passed ? "passed" : "failed", text: c.passed ? "passed" : "failed" }),
          " (" + n + " of " + DATA.scenario.deal_rule.min_accept + " acceptances needed)"),
        h("p", null, "Accept: ", chips(c.accept), ". Reject: ", chips(c.reject), ".",
          (c.abstain || []).length ? [" No vote: ", chips(c.abstain), "."] : null)];
      case "error":
        return [h("p", { class: "text" }, "The " + (c.task || "turn") + " of ", chip(c.party || e.speaker),
          " failed after " + (c.attempts || 0) + " attempts: ", h("span", { text: c.error })),
        c.raw ? h("details", null, h("summary", { text: "Raw reply" }), h("pre", { class: "raw", text: c.raw })) : null];
      case "outcome":
        return [h("p", null, "Session ends: ", h("strong", { text: c.kind }), " · future: ", branchEl(c.branch)),
          packageTable(c.package)];
      default:
        return [h("pre", { class: "raw", text: JSON.stringify(c, null, 2) })];
    }
  }

  function eventEl(e) {
    var speaker = String(e.speaker);
    var head = [h("span", { class: "seq", text: "#" + e.seq }), chip(speaker), h("span", { class: "kind", text: TYPE_NAMES[e.type] || e.type })];
    if (e.type === "side_message" && e.content) head.push(h("span", { class: "kind" }, "to ", chip(e.content.to)));
    if (e.edited) head.push(h("span", { class: "badge edited", title: "words put in by the fork that made this run", text: "edited" }));
    if (FAC && Array.isArray(e.audience)) {
      head.push(h("span", { class: "kind", text: e.audience.length ? "seen by " + e.audience.map(partyName).join(", ") : "facilitator only" }));
    }
    var turn = TURN_OF[e.seq];
    if (turn) {  // its label is drawn by CSS, so the search ignores it
      head.push(h("button", { type: "button", class: "context-open", "data-turn": turn.id,
        "aria-label": "What " + partyName(turn.party) + " knew at this " + (turn.task === "move" ? "move" : "vote") }));
    }
    var el = colored(h("article", {
      class: "ev ev-" + e.type, id: "ev-" + e.seq, "data-seq": e.seq, "data-type": e.type, "data-speaker": speaker,
      "data-round": e.round, "data-turn": turn ? turn.id : null,
    }, h("header", null, head), eventBody(e)), speaker);
    if (FAC) showNotes(el, e.seq);
    return el;
  }

  // (Re)draw an event's notes: at build time, and after the served editor adds or removes one.
  function showNotes(el, seq) {
    var old = el.querySelector(":scope > aside.notes");
    if (old) el.removeChild(old);
    var notes = NOTES[seq] || [];
    if (!notes.length) return;
    var aside = h("aside", { class: "notes" }, notes.map(noteEl));
    var form = el.querySelector(":scope > form");
    el.insertBefore(aside, form);
  }

  function noteEl(a) {
    return h("div", { class: "note", "data-annotation-seq": a.seq, "data-annotation-id": a.id || null, "data-tag": a.tag },
      a.tag ? h("span", { class: "tag", text: a.tag }) : null, h("span", { text: a.note }),
      h("span", { class: "muted", text: " — " + [a.author, a.ts].filter(Boolean).join(", ") }),
      DATA.served && a.id ? h("button", { type: "button", class: "note-remove", "data-remove": a.id,
        "aria-label": "Remove tag " + a.tag + " from event #" + a.seq }) : null);  // label drawn by CSS
  }

  function transcript() {
    var sec = h("section", { id: "transcript" }, h("h2", { text: "Transcript" }));
    var rounds = [];
    var byRound = {};
    DATA.events.forEach(function (e) {
      if (!(e.round in byRound)) {
        byRound[e.round] = h("section", { class: "round", "data-round": e.round },
          h("h2", { text: e.round > 0 ? "Round " + e.round : "Before the first round" }));
        rounds.push(byRound[e.round]);
      }
      byRound[e.round].appendChild(eventEl(e));
    });
    rounds.forEach(function (r) { sec.appendChild(r); });
    if (!DATA.events.length) sec.appendChild(para("No events were recorded.", "muted"));
    var seqs = {};
    DATA.events.forEach(function (e) { seqs[e.seq] = true; });
    var stray = (DATA.annotations || []).filter(function (a) { return !seqs[a.seq]; });
    if (FAC && stray.length) {
      sec.appendChild(h("div", { class: "panel", id: "stray-notes" },
        h("h3", { text: "Annotations on events not in this transcript" }),
        stray.map(function (a) { return h("div", null, "#" + a.seq + " ", noteEl(a)); })));
    }
    return sec;
  }

  // ---------------------------------------------------------------- what a party knew (facilitator)

  var CTX = FAC && DATA.contexts ? DATA.contexts : null;
  var TURNS = {};
  var TURN_OF = {};
  if (CTX) {
    CTX.turns.forEach(function (t) {  // each turn's prompt is the party's turn before it, cut and added to
      t.user = (t.after === null ? "" : TURNS[t.after].user.slice(0, t.keep)) + t.tail;
      TURNS[t.id] = t;
      t.seqs.forEach(function (q) { TURN_OF[q] = t; });
    });
  }

  function contextNotice() {
    if (!CTX || CTX.available) return null;
    return h("div", { class: "notice", id: "no-context",
      text: "What each party knew at its turns cannot be rebuilt: " + CTX.why });
  }

  function contextPanel() {
    if (!CTX) return null;
    return h("aside", { id: "context", class: "context-panel", hidden: true, tabindex: "-1", "aria-label": "What the party knew" });
  }

  function showContext(t) {
    var panel = document.getElementById("context");
    var task = t.task === "move" ? "move" : "vote";
    var played = (PARTIES[t.party] || {}).played_by;
    panel.textContent = "";
    add(panel, [
      h("button", { type: "button", class: "context-close", "data-close": "1", "aria-label": "Close" }),
      colored(h("h2", null, "What ", chip(t.party), " knew at its " + task + " in round " + t.round), t.party),
      h("p", { class: "muted", text: "The messages its agent was sent, rebuilt from the recorded scenario, the " +
        t.seen + " events before this turn and the run's prompt templates." }),
      CTX.changed.length ? h("p", { class: "notice", id: "context-changed", text: "Changed since the run: " +
        CTX.changed.join(", ") + ". These words are today's templates, not necessarily the ones sent." }) : null,
      played === "narrated" ? para("Narrated: majlis's scripted negotiator decided from this prompt; the model only put the decision into words.", "muted") : null,
      played === "human" ? para("Played by a person, who saw this record as a briefing.", "muted") : null,
      h("p", null, "Events of this turn: ", t.seqs.map(function (q, i) {
        return [i ? ", " : "", h("a", { href: "#ev-" + q, text: "#" + q })];
      })),
      h("h3", { text: "The " + task + " prompt" }),
      h("pre", { class: "raw prompt", "data-role": "user", text: t.user }),
      h("details", { class: "system-prompt" }, h("summary", { text: "System prompt: its brief, rules and hidden scores" }),
        h("pre", { class: "raw prompt", "data-role": "system", text: CTX.systems[t.party] || "" })),
    ]);
    document.querySelectorAll("article.ev.in-context").forEach(function (a) { a.classList.remove("in-context"); });
    t.seqs.forEach(function (q) {
      var a = document.getElementById("ev-" + q);
      if (a) a.classList.add("in-context");
    });
    panel.setAttribute("data-turn", t.id);
    panel.hidden = false;
    document.documentElement.classList.add("context-open");  // the page makes room for it
    panel.scrollTop = 0;
    panel.focus();
  }

  function hideContext() {
    var panel = document.getElementById("context");
    if (panel) panel.hidden = true;
    document.documentElement.classList.remove("context-open");
    document.querySelectorAll("article.ev.in-context").forEach(function (a) { a.classList.remove("in-context"); });
  }

  // ---------------------------------------------------------------- timeline

  var MARKS = { inject: "!", proposal: "P", tally: "V", turning_point: "*", tag: "#", outcome: "=" };

  function timelineStrip() {
    var items = DATA.timeline || [];
    var sec = h("section", { class: "panel", id: "timeline" }, h("h2", { text: "Timeline" }));
    if (!items.length) {
      sec.appendChild(para("Nothing happened yet: no scenario event, proposal or vote.", "muted"));
      return sec;
    }
    var rows = [];
    var byRound = {};
    items.forEach(function (it) {
      if (!(it.round in byRound)) {
        byRound[it.round] = h("ol", { class: "tl-items" });
        rows.push(h("li", { class: "tl-round", "data-round": it.round },
          h("span", { class: "tl-label", text: it.round > 0 ? "Round " + it.round : "Start" }), byRound[it.round]));
      }
      var cls = "tl tl-" + it.kind + (it.kind === "tally" ? (it.passed ? " passed" : " failed") : "");
      var a = h("a", { href: "#ev-" + it.seq, class: cls, "data-seq": it.seq, "data-kind": it.kind, title: "#" + it.seq + " " + it.label },
        h("span", { class: "tl-mark", "aria-hidden": "true", text: MARKS[it.kind] || "" }), " ", it.label);
      if (it.party) colored(a, it.party);
      byRound[it.round].appendChild(h("li", null, a));
    });
    var keys = [["inject", "scenario event"], ["proposal", "proposal"], ["tally", "vote"]];
    if (FAC) keys.push(["turning_point", "turning point"], ["tag", "facilitator's tag"]);
    add(sec, [h("ol", { class: "timeline" }, rows), h("p", { class: "legend muted" }, keys.map(function (k) {
      return h("span", null, h("span", { class: "tl-mark tl-" + k[0], text: MARKS[k[0]] }), " " + k[1]);
    }))]);
    return sec;
  }

  // Bring an event into view, clearing the filters if they hide it, and mark it a moment.
  function goTo(seq) {
    var el = document.getElementById("ev-" + seq);
    if (!el) return;
    if (el.hidden) {
      document.querySelectorAll("input[data-filter]").forEach(function (b) { b.checked = true; });
      document.getElementById("search").value = "";
      applyFilters();
    }
    el.scrollIntoView({ block: "center" });
    el.classList.remove("flash");
    void el.offsetWidth;  // restart the animation
    el.classList.add("flash");
  }

  // ---------------------------------------------------------------- filters

  function controls() {
    var speakers = DATA.parties.map(function (p) { return p.id; });
    DATA.events.forEach(function (e) {
      if (speakers.indexOf(e.speaker) < 0) speakers.push(e.speaker);
    });
    var types = [];
    DATA.events.forEach(function (e) { if (types.indexOf(e.type) < 0) types.push(e.type); });
    function box(kind, value, label) {
      return h("label", null, h("input", { type: "checkbox", checked: true, "data-filter": kind, value: value }), " ", label);
    }
    function all(kind, on) {
      return h("button", { type: "button", "data-all": kind, "data-on": on ? "1" : "0", text: on ? "all" : "none" });
    }
    return h("nav", { class: "controls", "aria-label": "Filters" },
      h("fieldset", { id: "party-filter" }, h("legend", { text: "Parties" }),
        speakers.map(function (id) { return box("party", id, chip(id)); }), all("party", true), all("party", false)),
      h("fieldset", { id: "type-filter" }, h("legend", { text: "Show" }),
        types.map(function (t) { return box("type", t, TYPE_NAMES[t] || t); })),
      h("label", null, "Search ", h("input", { type: "search", id: "search", placeholder: "words in messages, notes…", autocomplete: "off" })),
      h("span", { id: "count", "aria-live": "polite" }));
  }

  function checked(kind) {
    var on = {};
    document.querySelectorAll('input[data-filter="' + kind + '"]').forEach(function (b) { if (b.checked) on[b.value] = true; });
    return on;
  }

  function applyFilters() {
    var parties = checked("party");
    var types = checked("type");
    var q = document.getElementById("search").value.trim().toLowerCase();
    var shown = 0, total = 0;
    document.querySelectorAll("article.ev").forEach(function (el) {
      total++;
      var ok = parties[el.getAttribute("data-speaker")] && types[el.getAttribute("data-type")] &&
        (!q || el.textContent.toLowerCase().indexOf(q) >= 0);
      el.hidden = !ok;
      if (ok) shown++;
    });
    document.querySelectorAll("section.round").forEach(function (sec) {
      sec.hidden = !sec.querySelector("article.ev:not([hidden])");
    });
    document.querySelectorAll("#chart g.series").forEach(function (g) {
      if (parties[g.getAttribute("data-party")]) g.removeAttribute("display");
      else g.setAttribute("display", "none");
    });
    document.getElementById("count").textContent = shown === total
      ? "all " + total + " events" : shown + " of " + total + " events shown";
  }

  // ---------------------------------------------------------------- build

  var app = document.getElementById("app");
  add(app, [header(), notices(), contextNotice(), situation(), partyCards(), outcomePanel(), timelineStrip()]);
  if (FAC) add(app, [scoreChart(), hiddenScores()]);
  add(app, [controls(), transcript(), contextPanel()]);

  app.addEventListener("change", function (ev) {
    if (ev.target.matches("input[data-filter]")) applyFilters();
  });
  app.addEventListener("click", function (ev) {
    var link = ev.target.closest("a[href^='#ev-']");
    if (link) {
      ev.preventDefault();
      goTo(link.getAttribute("href").slice(4));
      return;
    }
    if (ev.target.closest("button[data-close]")) { hideContext(); return; }
    var opener = ev.target.closest("button.context-open");
    var article = ev.target.closest("article.ev[data-turn]");
    var interactive = ev.target.closest("button, a, summary, input, select, textarea, label, form, aside");
    var selecting = String(window.getSelection ? window.getSelection() : "").length > 0;
    if (opener || (article && !interactive && !selecting)) {
      showContext(TURNS[(opener || article).getAttribute("data-turn")]);
      return;
    }
    var b = ev.target.closest("button[data-all]");
    if (!b) return;
    var on = b.getAttribute("data-on") === "1";
    document.querySelectorAll('input[data-filter="' + b.getAttribute("data-all") + '"]').forEach(function (x) { x.checked = on; });
    applyFilters();
  });
  document.getElementById("search").addEventListener("input", applyFilters);
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") hideContext();
  });

  // Print everything that is folded away, then fold it back.
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) { d.open = true; opened.push(d); });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });

  applyFilters();

  // Only in pages `majlis serve` makes: what editor.js needs to show tags as they change.
  if (FAC && DATA.served) {
    window.majlisViewer = Object.freeze({
      data: DATA,
      h: h,
      addNote: function (a) {
        (NOTES[a.seq] = NOTES[a.seq] || []).push(a);
        var el = document.getElementById("ev-" + a.seq);
        if (el) showNotes(el, a.seq);
      },
      removeNote: function (id) {
        Object.keys(NOTES).forEach(function (seq) {
          var before = NOTES[seq].length;
          NOTES[seq] = NOTES[seq].filter(function (a) { return a.id !== id; });
          var el = document.getElementById("ev-" + seq);
          if (NOTES[seq].length !== before && el) showNotes(el, seq);
        });
        document.querySelectorAll(".note[data-annotation-id]").forEach(function (n) {
          if (n.getAttribute("data-annotation-id") === id) n.remove();  // stray notes
        });
      },
    });
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
