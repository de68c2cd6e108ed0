// fdp report index: the filter box hides the symbol rows that do not contain its text.
(function () {
  "use strict";
  var box = document.getElementById("filter");
  var rows = document.querySelectorAll("#symbols tbody tr");
  box.addEventListener("input", function () {
    var wanted = box.value.trim().toUpperCase();
    rows.forEach(function (row) {
      row.hidden = wanted !== "" && row.getAttribute("data-symbol").toUpperCase().indexOf(wanted) < 0;
    });
  });
  document.body.setAttribute("data-filter", "ready");
})();
