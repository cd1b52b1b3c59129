// One click for a member: the attendance page submits its own form once the page has loaded in a
// real browser. Link scanners in mail systems fetch the page but run no script, so they change nothing.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("response-form");
  if (form && form.dataset.autosubmit === "1" && !sessionStorage.getItem("responded:" + location.pathname)) {
    sessionStorage.setItem("responded:" + location.pathname, "1");
    form.submit();
  }
});
