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

  function start() {
    localizeTimes();
    wireFilters();
    wireDialogs();
    wireForms();
    wireLive();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
