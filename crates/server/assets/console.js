// Auditlog console script: shows times in the viewer's time zone, converts
// the From/To pickers (and the log stream's Replay picker) between local
// time and UTC, asks before a Delete, and runs the Live switch
// (new rows added at the top as they are stored). The pages work without it
// (times then stay in UTC, as the server rendered them; no Live switch).
(function () {
  "use strict";

  function pad(n, width) {
    var s = String(n);
    while (s.length < (width || 2)) s = "0" + s;
    return s;
  }

  // "YYYY-MM-DDTHH:MM:SS" in local time: the value format of datetime-local.
  function localValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function zoneName() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    } catch (e) {
      return "local time";
    }
  }

  function localizeTimes(root) {
    var zone = zoneName();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      var date = new Date(iso);
      if (isNaN(date.getTime())) return;
      el.textContent = localValue(date).replace("T", " ");
      el.title = date.toString() + " (" + zone + ")\n" + iso + " (UTC)";
    });
  }

  // A datetime-local value, read in the viewer's zone, as RFC 3339 UTC.
  function toUtc(value, endOfSecond) {
    if (!value) return "";
    if (value.length === 16) value += ":00";
    var date = new Date(value);
    if (isNaN(date.getTime())) return "";
    var iso = date.toISOString();
    // The picker has whole seconds; "to" includes all of its last second.
    return endOfSecond ? iso.replace(/\.\d{3}Z$/, ".999999Z") : iso;
  }

  function wireFilters() {
    var form = document.getElementById("filters");
    if (!form) return;
    var zone = zoneName();
    form.querySelectorAll(".tz").forEach(function (el) {
      el.textContent = "(" + zone + ")";
    });
    var pickers = form.querySelectorAll("input[data-utc-target]");
    pickers.forEach(function (picker) {
      var hidden = document.getElementById(picker.getAttribute("data-utc-target"));
      if (hidden && hidden.value) {
        var date = new Date(hidden.value);
        if (!isNaN(date.getTime())) picker.value = localValue(date);
      }
    });
    form.addEventListener("submit", function () {
      pickers.forEach(function (picker) {
        var hidden = document.getElementById(picker.getAttribute("data-utc-target"));
        if (hidden) hidden.value = toUtc(picker.value, picker.hasAttribute("data-end-of-second"));
        // The converted value travels in the hidden field; the picker's would be read as UTC.
        picker.disabled = true;
      });
      // Leave empty fields out of the URL, so that shared links stay short.
      form.querySelectorAll("input, select").forEach(function (field) {
        if (field.name && !field.multiple && field.value === "" && field.type !== "submit") {
          field.disabled = true;
        }
      });
    });
    // Coming back with the back button restores the form as it was shown.
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("[disabled]").forEach(function (field) {
        field.disabled = false;
      });
    });
  }

  // Forms other than the filters with date-time pickers (the log stream's
  // Replay): the local value travels as UTC in the hidden field; a form
  // with data-confirm asks first (Delete); the kind chooser reloads the
  // create form for the kind chosen.
  function wireForms() {
    document.querySelectorAll("form[data-utc-form]").forEach(function (form) {
      var zone = zoneName();
      form.querySelectorAll(".tz").forEach(function (el) {
        el.textContent = "(" + zone + ")";
      });
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[data-utc-target]").forEach(function (picker) {
          var hidden = document.getElementById(picker.getAttribute("data-utc-target"));
          if (hidden) hidden.value = toUtc(picker.value, false);
        });
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    var kind = document.getElementById("f-kind");
    if (kind && kind.form) {
      kind.addEventListener("change", function () {
        kind.form.submit();
      });
    }
  }

  function wireDialogs() {
    document.querySelectorAll("[data-open-dialog]").forEach(function (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (!dialog || typeof dialog.showModal !== "function") return;
      opener.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.showModal();
      });
    });
    document.querySelectorAll("[data-close-dialog]").forEach(function (closer) {
      closer.addEventListener("click", function (event) {
        var dialog = closer.closest("dialog");
        if (dialog) {
          event.preventDefault();
          dialog.close();
        }
      });
    });
  }

  // The Live switch: an EventSource on the page's stream of new rows. Each
  // message is {"seq", "html"}: a row the server rendered with the page's
  // own template (values escaped there). A row already shown (stored while
  // the page was made) is not added twice. The browser reconnects by itself
  // with Last-Event-ID, so nothing is missed or repeated across a drop.
  function wireLive() {
    var toggle = document.getElementById("live-toggle");
    var status = document.getElementById("live-status");
    var table = document.getElementById("events");
    if (!toggle || !table || typeof window.EventSource !== "function") {
      var label = document.getElementById("live-switch");
      if (label) label.hidden = true;
      return;
    }
    var body = table.tBodies[0];
    var source = null;
    function say(text) {
      if (status) status.textContent = text;
    }
    function stop(text) {
      if (source) source.close();
      source = null;
      toggle.checked = false;
      say(text);
    }
    function add(message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (body.querySelector('tr[data-seq="' + Number(data.seq) + '"]')) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = data.html;
      var row = holder.firstElementChild;
      if (!row) return;
      localizeTimes(row);
      row.classList.add("live-new");
      body.insertBefore(row, body.firstChild);
      table.hidden = false;
      var empty = document.getElementById("empty-state");
      if (empty) empty.hidden = true;
      say("Live: new events appear at the top");
    }
    toggle.addEventListener("change", function () {
      if (!toggle.checked) {
        stop("");
        return;
      }
      source = new EventSource(toggle.getAttribute("data-live-url"));
      say("Live: waiting for new events");
      source.onmessage = add;
      source.onerror = function () {
        // CONNECTING: the browser retries by itself; CLOSED: refused (signed
        // out, too many streams), so the switch goes off.
        if (source && source.readyState === EventSource.CLOSED) {
          stop("Live stopped: reload the page to try again");
        } else {
          say("Live: reconnecting…");
        }
      };
      source.onopen = function () {
        say("Live: waiting for new events");
      };
    });
    // Leaving the page ends the stream (and frees its place on the server).
    window.addEventListener("pagehide", function () {
      if (source) source.close();
    });
  }


  // ---- Search (docs/SEARCH.md) -------------------------------------------
  // The search box holds the query language; the Event Type, Action, User
  // and Project controls are a view of its positive `type:`, `action:`,
  // `user:` and `project:` terms, kept in step both ways. With script on,
  // only the box travels (the controls are disabled on submit), so a query
  // is one string in the URL.

  // The query's terms as written: runs of non-space, quotes keeping spaces.
  function splitTerms(text) {
    var terms = [];
    var current = "";
    var quoted = false;
    for (var i = 0; i < text.length; i++) {
      var c = text[i];
      if (quoted && c === "\\" && i + 1 < text.length) {
        current += c + text[i + 1];
        i++;
        continue;
      }
      if (c === '"') quoted = !quoted;
      if (!quoted && /\s/.test(c)) {
        if (current) terms.push(current);
        current = "";
      } else {
        current += c;
      }
    }
    if (current) terms.push(current);
    return terms;
  }

  // A value as the language reads it back: plain, or quoted when needed.
  function quoteValue(value) {
    if (value !== "" && !/[\s,"*\\]/.test(value)) return value;
    return '"' + value.replace(/(["\\])/g, "\\$1") + '"';
  }

  // The values of a `key:a,"b c"` term (unquoted), or null if it is not one.
  function termValues(term, key) {
    var head = key + ":";
    if (term.slice(0, head.length) !== head) return null;
    var rest = term.slice(head.length);
    var values = [];
    var current = "";
    var quoted = false;
    for (var i = 0; i < rest.length; i++) {
      var c = rest[i];
      if (quoted && c === "\\" && i + 1 < rest.length) {
        current += rest[i + 1];
        i++;
      } else if (c === '"') {
        quoted = !quoted;
      } else if (c === "," && !quoted) {
        values.push(current);
        current = "";
      } else {
        current += c;
      }
    }
    values.push(current);
    return values;
  }

  // Which control mirrors which key.
  var MIRRORS = [
    { key: "type", id: "f-event-type" },
    { key: "action", id: "f-action" },
    { key: "user", id: "f-user" },
    { key: "project", id: "f-project" }
  ];

  function controlValues(control) {
    if (control.tagName === "SELECT") {
      return Array.prototype.filter.call(control.options, function (o) {
        return o.selected && o.value !== "";
      }).map(function (o) { return o.value; });
    }
    return control.value ? [control.value] : [];
  }

  function setControlValues(control, values) {
    if (control.tagName === "SELECT") {
      Array.prototype.forEach.call(control.options, function (o) {
        o.selected = values.indexOf(o.value) >= 0 ||
          (o.value === "" && values.length === 0 && !control.multiple);
      });
      values.forEach(function (v) {
        var known = Array.prototype.some.call(control.options, function (o) { return o.value === v; });
        if (!known && v !== "") {
          var option = document.createElement("option");
          option.value = v;
          option.textContent = v;
          option.selected = true;
          control.appendChild(option);
        }
      });
    } else {
      control.value = values.length ? values[0] : "";
    }
  }

  // Exact values of a positive `key:` term (a prefix `v*` is not one a
  // control can show), or null.
  function exactValues(term, key) {
    var values = termValues(term, key);
    if (!values) return null;
    var exact = values.filter(function (v) { return v.slice(-1) !== "*" && v !== ""; });
    return exact.length === values.length && term.indexOf("*") < 0 ? exact : null;
  }

  // The query with `key`'s positive exact terms replaced by `values`.
  function withKey(text, key, values) {
    var kept = splitTerms(text).filter(function (t) { return exactValues(t, key) === null; });
    if (values.length) kept.push(key + ":" + values.map(quoteValue).join(","));
    return kept.join(" ");
  }

  // The query with `term` added; its opposite (the same term with the
  // other sign) is taken out, and a term already there is not repeated.
  function withTerm(text, term) {
    var opposite = term.charAt(0) === "-" ? term.slice(1) : "-" + term;
    var terms = splitTerms(text).filter(function (t) { return t !== opposite; });
    if (terms.indexOf(term) < 0) terms.push(term);
    return terms.join(" ");
  }

  function showQueryError(box, message, position) {
    var holder = document.getElementById("query-error");
    if (!holder) return;
    holder.textContent = "";
    var text = document.createElement("span");
    text.textContent = message;
    holder.appendChild(text);
    if (typeof position === "number") {
      // The query with a marker under the character the parser stopped at.
      var pre = document.createElement("pre");
      pre.className = "query-pointer";
      var chars = Array.from(box.value);
      pre.textContent = box.value + "\n" + " ".repeat(Math.min(position, chars.length)) + "^";
      holder.appendChild(pre);
      // Put the caret where the problem is (positions count code points).
      var offset = chars.slice(0, position).join("").length;
      box.focus();
      try { box.setSelectionRange(offset, offset); } catch (e) { /* not a text field */ }
    }
    holder.hidden = false;
  }

  function wireSearch() {
    var form = document.getElementById("filters");
    var box = document.getElementById("f-q");
    if (!form || !box) return;
    var tz = document.getElementById("f-tz");
    var zone = zoneName();
    if (tz && zone !== "local time") tz.value = zone;
    var checkUrl = box.getAttribute("data-check-url");

    MIRRORS.forEach(function (m) {
      var control = document.getElementById(m.id);
      if (!control) return;
      var mirror = function () {
        box.value = withKey(box.value, m.key, controlValues(control));
      };
      control.addEventListener("change", mirror);
      // The User field is typed into: mirror each keystroke, not only on blur.
      if (control.tagName === "INPUT") control.addEventListener("input", mirror);
    });
    box.addEventListener("input", function () {
      var terms = splitTerms(box.value);
      MIRRORS.forEach(function (m) {
        var control = document.getElementById(m.id);
        if (!control) return;
        var values = [];
        terms.forEach(function (t) {
          var v = exactValues(t, m.key);
          if (v) values = values.concat(v);
        });
        setControlValues(control, values);
      });
    });

    // The query is checked before the page is left, so a bad one shows the
    // server's message at its position and the table stays as it was.
    var checked = false;
    form.addEventListener("submit", function (event) {
      MIRRORS.forEach(function (m) {
        var control = document.getElementById(m.id);
        if (control) control.disabled = true;
      });
      if (checked || !checkUrl || typeof window.fetch !== "function") return;
      event.preventDefault();
      var url = checkUrl + "?q=" + encodeURIComponent(box.value) +
        (tz && tz.value ? "&tz=" + encodeURIComponent(tz.value) : "");
      window.fetch(url, { credentials: "same-origin" }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (answer) {
        if (answer.ok) {
          checked = true;
          form.requestSubmit ? form.requestSubmit() : form.submit();
          return;
        }
        // Back to the form as it was, for the person to correct the query.
        form.querySelectorAll("[disabled]").forEach(function (field) {
          field.disabled = false;
        });
        var error = answer.body && answer.body.error ? answer.body.error : {};
        var details = error.details || {};
        showQueryError(box, error.message || "The query could not be read.", details.position);
      }, function () {
        // The check itself failed (network): let the server answer the page.
        checked = true;
        form.submit();
      });
    });

    // A user, entity, project or IP in a row adds itself as a term; with
    // Alt or Shift held, negated.
    document.addEventListener("click", function (event) {
      var el = event.target.closest ? event.target.closest("[data-term]") : null;
      if (!el) return;
      event.preventDefault();
      var term = el.getAttribute("data-term");
      if (event.altKey || event.shiftKey) term = "-" + term;
      box.value = withTerm(box.value, term);
      box.dispatchEvent(new Event("input"));
      form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  }

  // Dragging across the histogram narrows the From/To range to the bars
  // it covered (each bar carries its bucket's UTC start and end).
  function wireHistogram() {
    var svg = document.querySelector("#histogram svg");
    var form = document.getElementById("filters");
    if (!svg || !form) return;
    var bars = Array.prototype.slice.call(svg.querySelectorAll("rect[data-start]"));
    if (!bars.length) return;
    var fromPicker = document.getElementById("f-from-local");
    var toPicker = document.getElementById("f-to-local");
    var first = null;
    function barAt(event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) / box.width * svg.viewBox.baseVal.width;
      var best = null;
      bars.forEach(function (bar) {
        var left = Number(bar.getAttribute("x"));
        if (x >= left) best = bar;
      });
      return best || bars[0];
    }
    function mark(a, b) {
      var lo = Math.min(bars.indexOf(a), bars.indexOf(b));
      var hi = Math.max(bars.indexOf(a), bars.indexOf(b));
      bars.forEach(function (bar, i) { bar.classList.toggle("picked", i >= lo && i <= hi); });
      return [bars[lo], bars[hi]];
    }
    svg.addEventListener("mousedown", function (event) {
      first = barAt(event);
      mark(first, first);
      event.preventDefault();
    });
    svg.addEventListener("mousemove", function (event) {
      if (first) mark(first, barAt(event));
    });
    window.addEventListener("mouseup", function (event) {
      if (!first) return;
      var span = mark(first, barAt(event));
      first = null;
      var start = new Date(span[0].getAttribute("data-start"));
      // The last bucket's end is exclusive: the range ends one second before
      // it, and "to" covers all of that second.
      var end = new Date(new Date(span[1].getAttribute("data-end")).getTime() - 1000);
      if (isNaN(start.getTime()) || isNaN(end.getTime())) return;
      if (fromPicker) fromPicker.value = localValue(start);
      if (toPicker) toPicker.value = localValue(end);
      form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  }

  function start() {
    localizeTimes();
    wireFilters();
    wireDialogs();
    wireForms();
    wireLive();
    wireSearch();
    wireHistogram();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
