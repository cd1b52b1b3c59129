/* Mailer: the little JavaScript the campaign pages use. Everything also works without it:
   it only adds the live recipient count, the live preview, member search, confirmations and
   live progress. No inline scripts: the admin pages' Content-Security-Policy forbids them. */
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  /* Buttons with data-confirm ask first; "{count}" is replaced by the live recipient count. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (!button) return;
    var message = button.getAttribute("data-confirm");
    var count = document.getElementById("recipient-count");
    message = message.replace("{count}", count ? count.textContent.trim() : "");
    if (!window.confirm(message)) event.preventDefault();
  });

  /* --- the composer ------------------------------------------------------------------------ */

  function composer(form) {
    var countEl = document.getElementById("recipient-count");
    var memberSelect = document.getElementById("f-member");
    var textLink = document.getElementById("text-link");
    var frames = ["preview-desktop", "preview-phone"];
    var previewForms = {};

    function fields() {
      var data = new FormData(form);
      data.delete("attachment");  // never upload a file just to count or preview
      return data;
    }

    function isSegmentField(name) {
      return /^(seg_|ex_)/.test(name) || name === "stream";
    }

    var CONTENT_FIELDS = ["name", "subject", "preheader", "from_name", "body", "body_format", "stream", "member"];

    function isContentField(name) {
      return CONTENT_FIELDS.indexOf(name) >= 0;
    }

    var refreshCount = debounce(function () {
      countEl.setAttribute("aria-busy", "true");
      fetch(form.getAttribute("data-count-url"), {method: "POST", body: fields(), credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          countEl.textContent = answer.text;
          var asOf = document.getElementById("count-as-of");
          if (asOf) asOf.textContent = answer.as_of_text || "";
        })
        .catch(function () { countEl.textContent = "The count could not be updated; saving checks it."; })
        .then(function () { countEl.removeAttribute("aria-busy"); });
    }, 400);

    /* One hidden form per preview frame: a form submitted twice at once would cancel its first submission. */
    function previewForm(target) {
      if (!previewForms[target]) {
        var f = document.createElement("form");
        f.method = "post";
        f.action = form.getAttribute("data-preview-url");
        f.target = target;
        f.hidden = true;
        document.body.appendChild(f);
        previewForms[target] = f;
      }
      return previewForms[target];
    }

    function refreshPreviewNow() {
      var data = fields();
      frames.forEach(function (target) {
        var f = previewForm(target);
        f.textContent = "";
        data.forEach(function (value, name) {
          if (typeof value !== "string") return;
          var field = document.createElement("textarea");  // keeps the body's line breaks
          field.name = name;
          field.value = value;
          f.appendChild(field);
        });
        f.submit();
      });
      var member = memberSelect ? memberSelect.value : "";
      if (textLink) {
        textLink.href = form.getAttribute("data-text-url") + (member ? "?member=" + encodeURIComponent(member) : "");
      }
    }

    var refreshPreview = debounce(refreshPreviewNow, 700);

    function changed(event) {
      var target = event.target;
      if (!target.name || target.form !== form) return;
      if (isSegmentField(target.name)) refreshCount();
      if (isContentField(target.name)) refreshPreview();
    }

    /* Enter in a field with data-enter presses that field's own button, not the form's first (Save). */
    form.addEventListener("keydown", function (event) {
      var buttonId = event.key === "Enter" && event.target.getAttribute("data-enter");
      if (!buttonId) return;
      event.preventDefault();
      document.getElementById(buttonId).click();
    });

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);

    var previewButton = document.getElementById("preview-button");
    if (previewButton) {
      previewButton.addEventListener("click", function (event) {
        event.preventDefault();
        refreshPreviewNow();
      });
    }

    /* Member search: fills the "preview as" list without leaving the page. */
    var find = document.getElementById("f-find");
    var findForm = document.getElementById("find-member");
    var findStatus = document.getElementById("find-status");

    function search() {
      var q = find.value.trim();
      if (!q) return;
      fetch(form.getAttribute("data-members-url") + "?q=" + encodeURIComponent(q), {credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(function (found) {
          while (memberSelect.options.length > 1) memberSelect.remove(1);
          found.forEach(function (m) { memberSelect.add(new Option(m.label, String(m.id))); });
          findStatus.textContent = found.length + " found" + (found.length ? ": the first is chosen" : "");
          if (found.length) {
            memberSelect.value = String(found[0].id);
            refreshPreviewNow();
          }
        });
    }

    if (find && findForm && memberSelect) {
      find.addEventListener("input", debounce(search, 400));
      findForm.addEventListener("submit", function (event) {
        event.preventDefault();
        search();
      });
    }
  }

  /* --- the campaign page: live progress ---------------------------------------------------- */

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function minutesLeft(seconds) {
    if (!seconds) return "—";
    return Math.max(1, Math.ceil(seconds / 60)) + " min";
  }

  function watch(section) {
    var shown = section.getAttribute("data-status");
    var url = section.getAttribute("data-url");

    function tick() {
      fetch(url, {credentials: "same-origin", cache: "no-store"})
        .then(function (response) { return response.json(); })
        .then(function (p) {
          if (p.status !== shown) {  // a new state brings other buttons and the report: reload
            window.location.reload();
            return;
          }
          var percent = p.total || !p.live ? p.percent : 0;  // nothing snapshotted yet is not 100%
          var bar = document.getElementById("progress-bar");
          if (bar) {
            bar.value = percent;
            bar.textContent = percent + "%";
          }
          setText("progress-percent", percent + "%");
          setText("count-sent", p.sent);
          setText("count-queued", p.queued);
          setText("count-failed", p.failed);
          setText("count-suppressed", p.suppressed);
          setText("count-cancelled", p.cancelled);
          setText("count-rate", Math.round(p.rate_per_min));
          setText("count-left", minutesLeft(p.seconds_left));
          if (p.total) {
            var suffix = p.status === "paused" ? ": paused." : ".";
            setText("progress-status", p.sent + " of " + p.total + " sent" + suffix);
          }
          var why = document.getElementById("progress-why");
          if (why) {
            why.textContent = p.why_waiting || "";
            why.hidden = !p.why_waiting;
          }
          if (p.live) setTimeout(tick, 2000);
        })
        .catch(function () { setTimeout(tick, 5000); });
    }

    setTimeout(tick, 2000);
  }

  var form = document.getElementById("composer");
  if (form) composer(form);
  var progress = document.getElementById("progress");
  if (progress && progress.getAttribute("data-live") === "1") watch(progress);
})();
