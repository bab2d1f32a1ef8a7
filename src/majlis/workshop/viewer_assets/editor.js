// majlis serve: tag controls for the facilitator view. Only pages the local server hands
// out carry this script; a file written by `majlis view` never does. Tags are posted back
// to the server that served the page (CSP connect-src 'self') as JSON, with the server's
// token in a header. The page lives at /runs/<id>/facilitator, so "tags" is /runs/<id>/tags.
(function () {
  "use strict";

  var V = window.majlisViewer;
  if (!V) return;
  var h = V.h;
  var TOKEN = V.data.served.token;
  var TAGS = V.data.served.tags;
  var OTHER = "";  // the select's value for "type your own"
  var open = null;  // the one tag form on screen

  function label(tag) { return String(tag).replace(/_/g, " "); }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-Majlis-Token": TOKEN },
      body: JSON.stringify(body),
    }).then(function (r) {
      if (r.ok) return r.json();
      return r.text().then(function (t) { throw new Error(t.trim() || r.status + " " + r.statusText); });
    });
  }

  var status = h("span", { id: "tag-status", role: "status", "aria-live": "polite" });

  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "";
  }

  function close() {
    if (open) open.remove();
    open = null;
  }

  function tagForm(seq) {
    var select = h("select", { name: "tag", "aria-label": "Tag" },
      TAGS.map(function (t) { return h("option", { value: t, text: label(t) }); }),
      h("option", { value: OTHER, text: "other: type your own…" }));
    var custom = h("input", { type: "text", name: "custom", maxlength: 40, placeholder: "your own tag",
      "aria-label": "Your own tag", hidden: true, autocomplete: "off" });
    var note = h("textarea", { name: "note", rows: 2, maxlength: 4000, placeholder: "Note (optional)",
      "aria-label": "Note" });
    var save = h("button", { type: "submit", class: "save", text: "Save tag" });
    var msg = h("span", { class: "form-status", role: "alert" });
    var form = h("form", { class: "tagger", "data-seq": seq, "aria-label": "Tag event #" + seq },
      h("label", null, "Tag event #" + seq + " ", select), custom, note, save,
      h("button", { type: "button", "data-cancel": "1", text: "Cancel" }), msg);

    select.addEventListener("change", function () {
      custom.hidden = select.value !== OTHER;
      if (!custom.hidden) custom.focus();
    });
    form.addEventListener("keydown", function (ev) { if (ev.key === "Escape") close(); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var tag = select.value === OTHER ? custom.value.trim() : select.value;
      if (!tag) {
        msg.textContent = "Type a tag first.";
        custom.focus();
        return;
      }
      save.disabled = true;
      msg.textContent = "";
      post("tags", { seq: seq, tag: tag, note: note.value }).then(function (a) {
        V.addNote(a);
        close();
        say("Saved “" + label(a.tag) + "” on event #" + a.seq + ".");
      }, function (err) {
        msg.textContent = err.message;
        save.disabled = false;
      });
    });
    return form;
  }

  function openForm(article) {
    close();
    open = tagForm(+article.getAttribute("data-seq"));
    article.appendChild(open);
    open.querySelector("select").focus();
  }

  function removeTag(button) {
    var id = button.getAttribute("data-remove");
    button.disabled = true;
    post("tags/remove", { id: id }).then(function () {
      V.removeNote(id);
      say("Tag removed.");
    }, function (err) {
      button.disabled = false;
      say(err.message, true);
    });
  }

  // ------------------------------------------------------------------ the page

  var app = document.getElementById("app");
  var bar = h("div", { class: "served-bar", id: "served-bar" },
    h("a", { href: "../../", text: "← all runs" }),
    h("a", { href: "tags.csv", id: "export-csv", download: "", text: "Export tags (CSV)" }),
    h("a", { href: "debrief", id: "debrief-link", text: "Debrief" }),
    h("span", { class: "muted", text: "Tag any event with its “+ tag” button." }),
    status);
  app.insertBefore(bar, app.firstChild ? app.firstChild.nextSibling : null);

  document.querySelectorAll("article.ev").forEach(function (article) {
    var seq = article.getAttribute("data-seq");
    article.querySelector(":scope > header").appendChild(
      h("button", { type: "button", class: "tag-add", "aria-label": "Tag event #" + seq }));
  });

  app.addEventListener("click", function (ev) {
    var add = ev.target.closest("button.tag-add");
    if (add) return openForm(add.closest("article.ev"));
    var remove = ev.target.closest("button.note-remove");
    if (remove) return removeTag(remove);
    if (ev.target.closest("button[data-cancel]")) close();
  });

  document.documentElement.setAttribute("data-editable", "1");
})();
