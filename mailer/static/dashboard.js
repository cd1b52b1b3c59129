/* The overview's live progress bars: each send in progress asks its campaign's progress.json
   every few seconds until it is no longer live. No inline script (the CSP forbids them). */
(function () {
  "use strict";
  document.querySelectorAll(".send-progress[data-url]").forEach(function (box) {
    var bar = box.querySelector("progress");
    var count = box.querySelector(".send-count");
    function poll() {
      fetch(box.getAttribute("data-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return;
          bar.value = p.percent;
          bar.textContent = p.percent + "%";
          count.textContent = p.sent + " of " + p.total + " sent" + (p.live ? "" : ": finished");
          if (p.live) setTimeout(poll, 3000);
        })
        .catch(function () { setTimeout(poll, 10000); });
    }
    setTimeout(poll, 2000);
  });
})();
