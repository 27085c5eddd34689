// hourglass dashboard: live updates over Server-Sent Events, live
// durations, and a guard against double submits. Plain JS, no build step.
(function () {
  "use strict";

  function fmtDuration(ms) {
    var s = Math.max(0, ms) / 1000;
    if (s < 10) return s.toFixed(1) + "s";
    if (s < 60) return Math.floor(s) + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  // Running jobs' durations tick in place (fixed-width, tabular digits).
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-start]").forEach(function (el) {
      el.textContent = fmtDuration(now - Number(el.getAttribute("data-start")));
    });
  }
  setInterval(tick, 1000);

  function setLive(state, text) {
    var live = document.getElementById("live");
    if (!live) return;
    live.setAttribute("data-state", state);
    var t = live.querySelector(".live-text");
    if (t && t.textContent !== text) t.textContent = text;
  }

  // stream opens an EventSource and re-opens it when the browser gives up
  // (a 401 after the session expired reloads to the sign-in page).
  function stream(urlFn, handlers) {
    var es, closed = false, failures = 0;
    function open() {
      es = new EventSource(urlFn());
      es.addEventListener("open", function () { failures = 0; setLive("up", "live"); });
      Object.keys(handlers).forEach(function (name) {
        es.addEventListener(name, function (e) {
          var data;
          try { data = JSON.parse(e.data); } catch (_) { return; }
          handlers[name](data, e);
        });
      });
      es.addEventListener("error", function () {
        if (closed) return;
        setLive("down", "reconnecting…");
        if (es.readyState === EventSource.CLOSED) {
          failures++;
          fetch(location.href, { method: "HEAD", credentials: "same-origin", redirect: "manual" }).then(function (r) {
            if (r.type === "opaqueredirect" || r.status === 401) { location.reload(); return; }
            setTimeout(open, Math.min(30000, 1000 * Math.pow(2, failures)));
          }, function () { setTimeout(open, Math.min(30000, 1000 * Math.pow(2, failures))); });
        }
      });
    }
    open();
    return { close: function () { closed = true; es.close(); } };
  }

  function fromHTML(html, tag) {
    var t = document.createElement(tag || "template");
    if (tag === "tbody") { t.innerHTML = html.trim(); return t.firstElementChild; }
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // --- jobs list ---
  var table = document.getElementById("jobs");
  if (table && table.dataset.stream) {
    var tbody = document.getElementById("rows");
    var firstPage = table.dataset.first === "true";
    var pending = new Map(); // id -> row element, newest jobs not shown yet
    var bar = document.getElementById("newbar");
    var count = document.getElementById("new-count");
    var since = null;
    var base = table.dataset.stream;
    var updatePending = function () {
      count.textContent = String(pending.size);
      bar.hidden = pending.size === 0;
    };
    document.getElementById("show-new").addEventListener("click", function () {
      var ids = Array.from(pending.keys()).sort().reverse();
      var ref = tbody.firstElementChild;
      ids.forEach(function (id) {
        var row = pending.get(id);
        row.classList.add("flash");
        tbody.insertBefore(row, ref);
      });
      pending.clear();
      updatePending();
      document.getElementById("empty").hidden = true;
      var first = tbody.querySelector("a");
      if (first) first.focus();
    });
    stream(function () {
      return since === null ? base : base.replace(/since=\d+/, "since=" + since);
    }, {
      sync: function (d) { since = d.at; },
      row: function (d) {
        var row = fromHTML(d.html, "tbody");
        var cur = document.getElementById("job-" + d.id);
        if (cur) {
          if (Number(cur.dataset.version) >= Number(row.dataset.version)) return;
          var hadFocus = cur.contains(document.activeElement);
          cur.replaceWith(row);
          if (hadFocus) { var a = row.querySelector("a"); if (a) a.focus(); }
          return;
        }
        if (!firstPage) return;
        if (pending.has(d.id) || d.match) { pending.set(d.id, row); updatePending(); }
      }
    });
  }

  // --- job detail ---
  var job = document.getElementById("job");
  if (job && job.dataset.stream && job.dataset.terminal !== "true") {
    var timeline = document.getElementById("timeline");
    var last = {};
    var after = Number((job.dataset.stream.match(/after=(\d+)/) || [0, 0])[1]);
    var s = stream(function () {
      return job.dataset.stream.replace(/after=\d+/, "after=" + after);
    }, {
      job: function (d) {
        Object.keys(d.parts).forEach(function (id) {
          if (last[id] === d.parts[id]) return;
          // Unchanged parts are left alone, so playing media is not reloaded.
          var el = document.getElementById(id);
          if (el) el.innerHTML = d.parts[id];
          last[id] = d.parts[id];
        });
      },
      timeline: function (d, e) {
        var li = fromHTML(d.html);
        if (!timeline.querySelector('[data-id="' + li.dataset.id + '"]')) timeline.appendChild(li);
        after = Number(e.lastEventId) || after;
        timeline.scrollTop = timeline.scrollHeight;
      },
      end: function () {
        s.close();
        var live = document.getElementById("live");
        if (live) live.hidden = true;
      }
    });
  }

  // --- submit form ---
  var form = document.getElementById("submit-form");
  if (form) {
    form.addEventListener("submit", function () {
      var btn = document.getElementById("submit-btn");
      var hasFile = Array.from(form.querySelectorAll("input[type=file]")).some(function (i) { return i.files.length > 0; });
      document.getElementById("submit-status").textContent = hasFile ? "Uploading and submitting…" : "Submitting…";
      setTimeout(function () { btn.disabled = true; }, 0);
    });
    var errs = document.getElementById("form-errors");
    if (errs) errs.focus();
  }
})();
