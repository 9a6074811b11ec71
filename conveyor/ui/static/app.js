/* Conveyor web UI: draws plotly figures the server embedded, sorts small tables, and keeps
   the runs chosen for comparison across table pages. No build step, no dependencies
   beyond the plotly.js and htmx the server ships. */
(function () {
  "use strict";

  var PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function drawChart(el) {
    if (el.dataset.drawn || !window.Plotly) return;
    el.dataset.drawn = "1";
    var figure = JSON.parse(el.dataset.figure);
    var layout = Object.assign({ autosize: true }, figure.layout || {});
    delete layout.height;  // the container sets the height
    window.Plotly.newPlot(el, figure.data, layout, PLOT_CONFIG);
  }

  var LAZY_AFTER = 16;  // pages with more charts than this draw each one as it scrolls into view
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { observer.unobserve(entry.target); drawChart(entry.target); }
    });
  }, { rootMargin: "300px" }) : null;

  function drawCharts(root) {
    var pending = root.querySelectorAll(".chart[data-figure]:not([data-drawn])");
    var lazy = observer && document.querySelectorAll(".chart[data-figure]").length > LAZY_AFTER;
    pending.forEach(function (el) { if (lazy) observer.observe(el); else drawChart(el); });
  }

  /* Client-side sorting of small tables: <table class="sortable">; cells may carry data-sort. */
  function cellValue(row, index) {
    var cell = row.children[index];
    if (!cell) return "";
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    var number = parseFloat(raw.replace(/,/g, ""));
    return raw !== "" && !isNaN(number) && /^[-+]?[\d.,]+(e[-+]?\d+)?%?$/i.test(raw.replace(/,/g, "")) ? number : raw.toLowerCase();
  }

  function sortTable(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      if (x === y) return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  /* Runs chosen for comparison, kept per experiment while the table pages, sorts and filters. */
  function selectionKey() {
    var holder = document.querySelector("[data-selection]");
    return holder ? "conveyor.selected." + holder.getAttribute("data-selection") : null;
  }

  function selected() {
    var key = selectionKey();
    try { return key ? JSON.parse(sessionStorage.getItem(key) || "[]") : []; } catch (e) { return []; }
  }

  function saveSelection(ids) {
    var key = selectionKey();
    if (key) sessionStorage.setItem(key, JSON.stringify(ids));
  }

  function showSelection() {
    var ids = selected();
    document.querySelectorAll("input.pick-run").forEach(function (box) {
      box.checked = ids.indexOf(box.value) >= 0;
      box.closest("tr").classList.toggle("selected", box.checked);
    });
    var button = document.getElementById("compare-runs");
    if (button) {
      button.disabled = ids.length < 2;
      button.querySelector(".count").textContent = ids.length;
    }
    var clear = document.getElementById("clear-selection");
    if (clear) clear.hidden = ids.length === 0;
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains("pick-run")) return;
    var ids = selected().filter(function (id) { return id !== box.value; });
    if (box.checked) ids.push(box.value);
    saveSelection(ids);
    showSelection();
  });

  document.addEventListener("click", function (event) {
    var th = event.target.closest("table.sortable th");
    if (th && !th.classList.contains("no-sort")) { sortTable(th); return; }
    if (event.target.closest("#compare-runs")) {
      var ids = selected();
      if (ids.length >= 2) window.location.href = "/compare?runs=" + ids.map(encodeURIComponent).join(",");
      return;
    }
    if (event.target.closest("#clear-selection")) { saveSelection([]); showSelection(); }
  });

  function refresh(root) {
    drawCharts(root || document);
    showSelection();
  }

  document.addEventListener("DOMContentLoaded", function () { refresh(document); });
  document.addEventListener("htmx:load", function (event) { refresh(event.target); });
  document.addEventListener("htmx:historyRestore", function () { refresh(document); });
})();
