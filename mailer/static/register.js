// The register at the door: a name filter over the list (the page works without it, as a plain
// list), Enter ticks the one member left, and the bar at the foot counts who is ticked.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("register-filter-field");
  var input = document.getElementById("register-filter");
  var status = document.getElementById("register-filter-status");
  var ticked = document.getElementById("ticked-count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.register tbody tr[data-find]"));
  if (!field || !input || !rows.length) return;
  field.hidden = false;

  function shown() { return rows.filter(function (row) { return !row.hidden; }); }

  function filter() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    rows.forEach(function (row) {
      var text = row.dataset.find;
      row.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
    });
    var n = shown().length;
    status.textContent = words.length ? (n === 1 ? "1 member found" : n + " members found") : "";
  }

  function count() {
    var n = document.querySelectorAll("table.register input[name=present]:checked").length;
    if (ticked) ticked.textContent = n + " ticked";
    rows.forEach(function (row) {
      var box = row.querySelector("input[name=present]");
      row.classList.toggle("is-present", !!(box && box.checked));
    });
  }

  input.addEventListener("input", filter);
  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    event.preventDefault();
    var left = shown();
    if (left.length !== 1) return;
    var box = left[0].querySelector("input[name=present]");
    if (!box || box.disabled) return;
    box.checked = true;
    count();
    input.value = "";
    filter();
    status.textContent = left[0].cells[1].textContent.trim() + " ticked as present. Save when you are done.";
  });
  document.addEventListener("change", function (event) {
    if (event.target.name === "present") count();
  });
});
