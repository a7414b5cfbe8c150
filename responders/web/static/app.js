/* openear review queue: live timers, new-mention polling, composer counter, saved replies, claim heartbeat.
   Plain JavaScript, no framework; the pages work without it. */
(function () {
  "use strict";

  var body = document.body;
  var serverNow = Date.parse(body.getAttribute("data-now") || "");
  var offset = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function now() { return Date.now() + offset; }

  function duration(seconds) {
    seconds = Math.max(seconds, 0);
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400 * 2) return Math.round(seconds / 3600) + " h";
    return Math.round(seconds / 86400) + " d";
  }

  /* ages and SLA timers */
  function tick() {
    var t = now();
    document.querySelectorAll("[data-created]").forEach(function (el) {
      var created = Date.parse(el.getAttribute("data-created"));
      if (!isNaN(created)) el.textContent = duration((t - created) / 1000);
    });
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var deadline = Date.parse(el.getAttribute("data-deadline"));
      if (isNaN(deadline)) return;
      var left = (deadline - t) / 1000;
      el.textContent = left > 0 ? duration(left) + " left" : "overdue " + duration(-left);
      el.classList.toggle("late", left <= 0);
    });
  }
  tick();
  setInterval(tick, 30000);

  /* the queue: poll for new mentions and offer a refresh */
  var table = document.getElementById("queue");
  if (table && table.getAttribute("data-poll-url")) {
    var pollUrl = table.getAttribute("data-poll-url");
    var lastId = table.getAttribute("data-last-id") || "0";
    var banner = document.getElementById("new-banner");
    var countEl = document.getElementById("new-count");
    var baseTitle = document.title;
    var stopped = false;
    var poll = function () {
      if (stopped || document.hidden) return;
      var url = pollUrl + (pollUrl.indexOf("?") >= 0 ? "&" : "?") + "since=" + encodeURIComponent(lastId);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 401) { stopped = true; window.location.href = "/login"; return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data) return;
          if (data.count > 0) {
            countEl.textContent = data.count > 10000 ? "10,000+" : String(data.count);
            banner.hidden = false;
            document.title = "(" + data.count + ") " + baseTitle;
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    };
    setInterval(poll, parseInt(table.getAttribute("data-interval") || "5000", 10));
    document.addEventListener("visibilitychange", poll);
  }

  /* the composer: character counter against the platform limit. Where the platform weighs
     characters (X: links 23, emoji and CJK 2) the server counts (data-length-url, the same function
     the send check uses); the local count shows meanwhile. */
  var textarea = document.getElementById("reply-text");
  var counter = document.getElementById("counter");
  var send = document.getElementById("send");
  var lengthTimer = null, lengthAsked = 0;
  function show(length, limit) {
    counter.textContent = length + " / " + limit;
    counter.classList.toggle("over", length > limit);
    counter.classList.toggle("near", length <= limit && length > limit * 0.9);
    if (send) send.disabled = length === 0 || length > limit;
  }
  function count() {
    if (!textarea || !counter) return;
    var limit = parseInt(textarea.getAttribute("data-limit") || "280", 10);
    var text = textarea.value.trim();
    var url = textarea.getAttribute("data-length-url");
    if (!url || !text) { show(Array.from(text).length, limit); return; }
    clearTimeout(lengthTimer);
    lengthTimer = setTimeout(function () {
      var asked = ++lengthAsked;
      fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ text: textarea.value })
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && asked === lengthAsked) show(data.length, data.limit); })
        .catch(function () { show(Array.from(text).length, limit); });
    }, 200);
  }
  if (textarea) {
    textarea.addEventListener("input", count);
    count();
  }

  /* saved replies: insert the filled-in text at the cursor */
  var templateForm = document.getElementById("template-form");
  if (templateForm && textarea) {
    templateForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var select = document.getElementById("template");
      var option = select.options[select.selectedIndex];
      if (!option) return;
      var text = option.getAttribute("data-text") || "";
      var idField = document.getElementById("saved-reply-id");
      if (idField) idField.value = option.value;
      var start = textarea.selectionStart || 0, end = textarea.selectionEnd || 0;
      textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
      textarea.focus();
      textarea.selectionStart = textarea.selectionEnd = start + text.length;
      count();
    });
  }

  /* suggested replies: "use as draft" replaces the composer's text (nothing is sent) */
  var savedReplyField = document.getElementById("saved-reply-id");
  document.querySelectorAll("form.use-suggestion").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!textarea) return;
      event.preventDefault();
      var button = form.querySelector("button");
      textarea.value = button.getAttribute("data-draft") || "";
      if (savedReplyField) savedReplyField.value = button.getAttribute("data-saved-reply-id") || "";
      textarea.focus();
      count();
    });
  });

  /* keep the claim alive while the holder works on the page */
  var replyForm = document.getElementById("reply-form");
  if (replyForm && replyForm.getAttribute("data-heartbeat-url")) {
    var active = false;
    ["input", "keydown", "pointerdown", "scroll"].forEach(function (name) {
      document.addEventListener(name, function () { active = true; }, { passive: true });
    });
    setInterval(function () {
      if (!active) return;
      active = false;
      fetch(replyForm.getAttribute("data-heartbeat-url"), {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
      }).catch(function () {});
    }, 60000);
  }

  /* no double submits */
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
})();
