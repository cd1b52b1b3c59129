/* Live progress of a long task done in one request or job (an import, an IMAP poll): its box
   asks the task's progress.json every second while it runs, and shows the count and stage.
   A form with data-progress="BOX" reveals that box when sent: the page stays in view until the
   answer comes, so the officer sees the work go rather than a page that seems stuck. A box with
   data-auto watches a task that runs by itself, more slowly while it is idle. No inline script
   (the CSP forbids them). */
(function () {
  "use strict";
  function watch(box, idleEvery, onlyLive) {
    var bar = box.querySelector("progress");
    var text = box.querySelector(".live-progress-text");
    function poll() {
      fetch(box.getAttribute("data-url"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (p && (p.live || !onlyLive)) {
            if (p.text) text.textContent = p.text;
            bar.value = p.percent;
            bar.textContent = p.percent + "%";
          }
          var next = p && p.live ? 1000 : idleEvery;
          if (next) setTimeout(poll, next);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }
  document.querySelectorAll("form[data-progress]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var box = document.getElementById(form.getAttribute("data-progress"));
      if (!box || !box.hidden) return;
      box.hidden = false;
      box.querySelector(".live-progress-text").textContent = "Starting…";
      watch(box, 1000, true);  // until the answer replaces the page; an earlier run's outcome is not this one's
    });
  });
  document.querySelectorAll(".live-progress[data-auto]").forEach(function (box) { watch(box, 15000, false); });
})();
