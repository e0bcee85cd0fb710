// mer leaderboard: sorting, filtering and the comparison picker. Plain JavaScript, no library, no network.
"use strict";

// Sorting: a header click sorts its table by that column (numbers high→low first, then low→high);
// rows without a value always go last; equal values keep the paper's order.
function sortTable(th) {
  const table = th.closest("table");
  const col = Array.prototype.indexOf.call(th.parentNode.children, th);
  const numeric = th.dataset.type === "num";
  const desc = numeric ? th.getAttribute("aria-sort") !== "descending" : th.getAttribute("aria-sort") === "ascending";
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", desc ? "descending" : "ascending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[col];
    if (!cell) return null;
    if (numeric) return cell.dataset.v === undefined ? null : parseFloat(cell.dataset.v);
    const text = cell.textContent.trim();
    return text === "" ? null : text.toLowerCase();
  };
  rows.sort((a, b) => {
    const ka = key(a), kb = key(b);
    if (ka === null && kb === null) return a.dataset.i - b.dataset.i;
    if (ka === null) return 1;
    if (kb === null) return -1;
    if (ka < kb) return desc ? 1 : -1;
    if (ka > kb) return desc ? -1 : 1;
    return a.dataset.i - b.dataset.i;
  });
  rows.forEach((r) => body.appendChild(r));
}

function resetOrder(table) {
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  const body = table.tBodies[0];
  Array.from(body.rows).sort((a, b) => a.dataset.i - b.dataset.i).forEach((r) => body.appendChild(r));
}

// Filtering: the protocol filter shows one protocol's sections; family and selection filters hide rows.
function applyFilters() {
  const get = (id) => { const el = document.getElementById(id); return el ? el.value : ""; };
  const protocol = get("f-protocol"), family = get("f-family"), select = get("f-select");
  document.querySelectorAll("section.board").forEach((s) => {
    s.hidden = protocol !== "" && s.dataset.protocol !== protocol;
  });
  document.querySelectorAll("section.board tbody tr").forEach((r) => {
    r.hidden = (family !== "" && r.dataset.family !== family) || (select !== "" && r.dataset.select !== select);
  });
  let shown = 0;
  document.querySelectorAll("section.board:not([hidden]) tbody tr:not([hidden])").forEach(() => { shown += 1; });
  const count = document.getElementById("f-count");
  if (count) count.textContent = shown + " rows shown";
}

// Comparison: each pair of runs is rendered in advance; the pickers show one.
function showPair(section) {
  const a = section.querySelector("select.pick-a").value;
  const b = section.querySelector("select.pick-b").value;
  let found = false;
  section.querySelectorAll("div.pair").forEach((d) => {
    const match = d.dataset.a === a && d.dataset.b === b;
    d.hidden = !match;
    found = found || match;
  });
  const none = section.querySelector(".pair-none");
  if (none) none.hidden = found;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable th").forEach((th) => {
    th.addEventListener("click", () => sortTable(th));
  });
  document.querySelectorAll("button.reset").forEach((b) => {
    b.addEventListener("click", () => resetOrder(document.getElementById(b.dataset.table)));
  });
  ["f-protocol", "f-family", "f-select"].forEach((id) => {
    const el = document.getElementById(id);
    if (el) el.addEventListener("change", applyFilters);
  });
  if (document.getElementById("f-protocol")) applyFilters();
  const hash = decodeURIComponent(window.location.hash.slice(1)).split("|");
  document.querySelectorAll("section.compare").forEach((s) => {
    if (hash.length === 3 && hash[0] === s.dataset.protocol) {
      s.querySelector("select.pick-a").value = hash[1];
      s.querySelector("select.pick-b").value = hash[2];
    }
    s.querySelectorAll("select").forEach((el) => el.addEventListener("change", () => showPair(s)));
    showPair(s);
  });
});
