// The facilitator's console: polls the whole session about once a second; pause and
// resume, push an inject (from the scenario's list or written on the spot), tag events,
// and read any party's view. Writes are JSON with the console's key.
(function () {
  const { data, $, el } = Live;
  let over = false;
  let eventCount = -1;
  let viewKey = "";

  data.injects.forEach((inject, i) => $("inject-pick").append(el("option", { value: String(i), text: inject.title })));
  $("inject-pick").addEventListener("change", () => {
    const inject = data.injects[Number($("inject-pick").value)];
    $("inject-title").value = inject ? inject.title : "";
    $("inject-text").value = inject ? inject.text : "";
  });

  async function write(action, body, status) {
    try {
      const r = await fetch("/console/" + action, {
        method: "POST",
        headers: { "content-type": "application/json", "x-majlis-token": data.key },
        body: JSON.stringify(body),
      });
      if (!r.ok) { if (status) $(status).textContent = "Refused: " + (await r.text()); return null; }
      return await r.json();
    } catch (e) {
      if (status) $(status).textContent = "Not sent (connection lost): try again.";
      return null;
    }
  }

  $("pause").addEventListener("click", () => write("pause", {}).then(poll));
  $("resume").addEventListener("click", () => write("resume", {}).then(poll));
  $("inject-push").addEventListener("click", async () => {
    const got = await write("inject", { title: $("inject-title").value, text: $("inject-text").value }, "inject-status");
    if (got) {
      $("inject-status").textContent = "Pushed: " + got.title;
      $("inject-title").value = $("inject-text").value = "";
      $("inject-pick").value = "";
    }
  });
  $("tag-save").addEventListener("click", async () => {
    const body = { seq: Number($("tag-seq").value), tag: $("tag-name").value, note: $("tag-note").value };
    const got = await write("tag", body, "tag-status");
    if (got) { $("tag-status").textContent = "Tagged event " + got.seq + " as " + got.tag; $("tag-note").value = ""; }
  });
  $("view-party").addEventListener("change", () => { viewKey = ""; poll(); });

  async function poll() {
    try {
      const r = await fetch("/console/state?key=" + encodeURIComponent(data.key), { cache: "no-store" });
      if (r.ok) render(await r.json());
      else $("status").textContent = "The server refused: " + (await r.text());
    } catch (e) {
      $("status").textContent = "Connection lost: trying again…";
    }
  }

  function render(s) {
    const running = s.status === "running" || s.status === "starting";
    $("status").textContent = "Session " + s.status + (s.paused ? " (paused)" : "") + " · " + s.events.length + " events";
    $("status").className = s.paused ? "paused" : "meta";
    document.documentElement.dataset.status = s.status;
    document.documentElement.dataset.paused = String(s.paused);
    $("run").textContent = s.run;
    $("news").replaceChildren(...s.news.map((n) => el("li", { text: n.title + ": " + n.text })));
    $("waiting").replaceChildren(...Object.entries(s.waiting).map(([p, task]) => el("li", { text: s.names[p] + " (" + task + ")" })));
    $("tags").replaceChildren(...s.tags.map((t) => el("li", { text: "#" + t.seq + " " + t.tag + (t.note ? ": " + t.note : "") })));
    if (s.events.length !== eventCount) {
      eventCount = s.events.length;
      $("event-lines").replaceChildren(...s.events.map((e) => {
        const tag = el("button", { type: "button", class: "tag-this", text: "tag" });
        tag.addEventListener("click", () => { $("tag-seq").value = String(e.seq); $("tag-name").focus(); });
        return el("li", { "data-seq": String(e.seq), "data-type": e.type }, "[" + e.seq + "] ", e.text + " ", tag);
      }));
    }
    const pick = $("view-party");
    if (!pick.options.length) {
      for (const p of Object.keys(s.views)) pick.append(el("option", { value: p, text: s.names[p] }));
    }
    const lines = s.views[pick.value] || [];
    const key = pick.value + ":" + lines.length;
    if (key !== viewKey) {
      viewKey = key;
      $("view-lines").replaceChildren(...lines.map((line) => el("li", { text: line })));
    }
    if (!running) over = true;
  }

  (function loop() { poll().then(() => { if (!over) setTimeout(loop, 1000); }); })();
})();
