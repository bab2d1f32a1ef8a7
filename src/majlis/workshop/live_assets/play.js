// A trainee's page: polls its own state about once a second, builds the form for the
// question waiting (only when a new one comes, so typing is never lost to a poll), and
// sends the answer as JSON with its key. A package under the walk-away point or across a
// red line comes back with warnings: the trainee confirms, or the answer is made
// safe (a reject, or the move without its proposal).
(function () {
  const { data, $, el } = Live;
  const base = "/play/" + encodeURIComponent(data.party);
  let shownAsk = null;
  let recordLength = -1;
  let over = false;

  $("who").textContent = "You play " + data.name;

  function statusWords(s) {
    if (s.status === "complete") return "The session is over.";
    if (s.status === "stopped") return "The facilitator stopped the session.";
    if (s.status.startsWith("failed")) return "The session stopped: " + s.status;
    return s.paused ? "Paused by the facilitator." : "The session is running.";
  }

  async function poll() {
    try {
      const r = await fetch(base + "/state?key=" + encodeURIComponent(data.key), { cache: "no-store" });
      if (r.ok) render(await r.json());
      else $("status").textContent = "The server refused: " + (await r.text());
    } catch (e) {
      $("status").textContent = "Connection lost: trying again…";
    }
    if (!over) setTimeout(poll, 1000);
  }

  function render(s) {
    $("status").textContent = statusWords(s);
    $("status").className = s.paused ? "paused" : "meta";
    if (s.record.length !== recordLength) {
      const list = $("record-lines");
      list.replaceChildren(...s.record.map((line) => el("li", { text: line })));
      list.scrollTop = list.scrollHeight;
      recordLength = s.record.length;
    }
    const q = s.question;
    if (!q) {
      if (shownAsk !== null) clearForm();
      shownAsk = null;
      $("where").textContent = s.status === "running" || s.status === "starting"
        ? "Waiting for the others…" : statusWords(s);
      if (s.status !== "running" && s.status !== "starting") {
        over = true;
        document.documentElement.dataset.over = s.status;
      }
      return;
    }
    if (q.id !== shownAsk) {
      shownAsk = q.id;
      showQuestion(q);
    }
  }

  function clearForm() {
    $("form-area").replaceChildren();
    $("confirm").hidden = true;
  }

  function where(q) {
    const what = q.task === "vote" ? "your secret vote" : "your turn";
    let text = "Round " + q.round + " of " + q.max_rounds + ": " + what + ".";
    if (q.standing) {
      const words = q.standing.map((p) => p.issue + ": " + p.option).join("; ");
      text += " On the table: " + words + ". Worth " + q.worth + " to you (walk-away " + q.threshold + ").";
    }
    return text;
  }

  function packageFields(q, prefix, chosen) {
    const box = el("div", { class: "package" });
    for (const issue of q.issues) {
      const id = prefix + issue.id;
      const select = el("select", { id: id, name: issue.id });
      for (const o of issue.options) {
        const opt = el("option", { value: o.id, text: o.label + " (" + o.score + ")" });
        if (chosen && chosen[issue.id] === o.id) opt.selected = true;
        select.append(opt);
      }
      box.append(el("label", { for: id, text: issue.title }), select);
    }
    return box;
  }

  function readPackage(box) {
    const out = {};
    for (const s of box.querySelectorAll("select")) out[s.name] = s.value;
    return out;
  }

  function showQuestion(q) {
    clearForm();
    $("form-status").textContent = "";
    $("where").textContent = where(q);
    if (q.task === "vote") return showVote(q);
    const form = el("form", { id: "move-form" });
    const positions = packageFields(q, "pos-", q.standing_ids);
    const proposal = packageFields(q, "prop-", q.standing_ids);
    const proposalSet = el("fieldset", { id: "proposal", hidden: "" }, el("legend", { text: "The package you put to the vote" }), proposal);
    const propose = el("input", { type: "checkbox", id: "propose" });
    propose.addEventListener("change", () => {
      proposalSet.hidden = !propose.checked;
      if (propose.checked) {  // start from the positions just chosen
        const chosen = readPackage(positions);
        for (const s of proposal.querySelectorAll("select")) s.value = chosen[s.name];
      }
    });
    const side = el("input", { type: "checkbox", id: "side" });
    const to = el("select", { id: "side-to" }, ...q.recipients.map((r) => el("option", { value: r.id, text: r.name })));
    const sideSet = el("fieldset", { id: "side-set", hidden: "" },
      el("label", { for: "side-to", text: "To" }), to,
      el("label", { for: "side-text", text: "Side message (only they and you see it)" }), el("textarea", { id: "side-text" }));
    side.addEventListener("change", () => { sideSet.hidden = !side.checked; });
    form.append(
      el("label", { for: "message", text: "Your public message to the room" }), el("textarea", { id: "message", required: "" }),
      el("fieldset", { id: "positions" }, el("legend", { text: "Your public positions" }), positions),
      el("p", {}, propose, " ", el("label", { for: "propose", class: "inline", text: "Put a package to the vote" })), proposalSet,
      el("p", {}, side, " ", el("label", { for: "side", class: "inline", text: "Send a private side message" })), sideSet,
      el("label", { for: "reasoning", text: "Private reasoning (only you see it)" }), el("textarea", { id: "reasoning" }),
      el("button", { type: "submit", id: "send-move", text: "Send my move" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const chosen = readPackage(positions);
      const answer = {
        private_reasoning: $("reasoning").value,
        private_positions: chosen,
        public_message: $("message").value.trim(),
        positions: chosen,
        proposal: propose.checked ? readPackage(proposal) : null,
        side_message: side.checked ? { to: to.value, text: $("side-text").value.trim() } : null,
      };
      if (!answer.public_message) { $("form-status").textContent = "Write a public message first."; return; }
      send(q, answer, false);
    });
    $("form-area").append(form);
  }

  function showVote(q) {
    const form = el("form", { id: "vote-form" },
      el("label", { for: "vote-reasoning", text: "Why (only you see it)" }), el("textarea", { id: "vote-reasoning" }),
      el("button", { type: "button", id: "vote-accept", text: "Accept the package" }),
      el("button", { type: "button", id: "vote-reject", text: "Reject it" }));
    const vote = (v) => send(q, { private_reasoning: $("vote-reasoning").value, vote: v }, false);
    form.querySelector("#vote-accept").addEventListener("click", () => vote("accept"));
    form.querySelector("#vote-reject").addEventListener("click", () => vote("reject"));
    $("form-area").append(form);
  }

  async function send(q, answer, confirmed) {
    $("form-status").textContent = "Sending…";
    let r;
    try {
      r = await fetch(base + "/answer", {
        method: "POST",
        headers: { "content-type": "application/json", "x-majlis-token": data.key },
        body: JSON.stringify({ ask: q.id, answer: answer, confirmed: confirmed }),
      });
    } catch (e) {
      $("form-status").textContent = "Not sent (connection lost): try again.";
      return;
    }
    if (!r.ok) {
      $("form-status").textContent = "Not sent: " + (await r.text());
      return;
    }
    const got = await r.json();
    if (got.warnings.length) return askToConfirm(q, answer, got.warnings);
    clearForm();
    $("form-status").textContent = "Sent. Waiting for the others…";
  }

  function askToConfirm(q, answer, warnings) {
    const voting = q.task === "vote";
    $("form-status").textContent = "";
    $("confirm-text").textContent = "Careful: " + warnings.join("; and ") + ".";
    $("confirm-yes").textContent = voting ? "Accept all the same" : "Propose it all the same";
    $("confirm-no").textContent = voting ? "No: vote reject" : "No: send my move without the proposal";
    $("confirm").hidden = false;
    $("confirm-yes").onclick = () => { $("confirm").hidden = true; send(q, answer, true); };
    $("confirm-no").onclick = () => {
      $("confirm").hidden = true;
      send(q, voting ? { ...answer, vote: "reject" } : { ...answer, proposal: null }, false);
    };
  }

  poll();
})();
