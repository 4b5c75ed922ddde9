// Auditlog console script: shows times in the viewer's time zone and converts
// the From/To pickers between local time and UTC. The pages work without it
// (times then stay in UTC, as the server rendered them).
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

  function localizeTimes() {
    var zone = zoneName();
    document.querySelectorAll("time[datetime]").forEach(function (el) {
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

  function start() {
    localizeTimes();
    wireFilters();
    wireDialogs();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
