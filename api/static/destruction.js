// Destruction console: the approved queue, running a station, and the records with their certificates.
"use strict";
const CAN_RUN = Boolean(document.getElementById("console").dataset.canRun);
async function loadQueue() {
  const queue = await api("GET", "/api/destruction/queue");
  document.getElementById("queue").replaceChildren(...queue.map((q) => el("tr", {},
    ...(CAN_RUN ? [el("td", {}, el("input", { type: "checkbox", name: "item", value: q.item }))] : []),
    el("td", {}, q.item), el("td", {}, q.title), el("td", {}, q.kind), el("td", {}, q.level), el("td", {}, q.status),
    el("td", {}, q.approval))));
}

async function loadRecords() {
  const records = await api("GET", "/api/destruction/records");
  document.getElementById("records").replaceChildren(...records.map((r) => el("tr", {},
    el("td", {}, r.id), el("td", {}, r.item), el("td", { class: r.outcome === "destroyed" ? "good" : "bad" }, r.outcome),
    el("td", {}, r.device_name), el("td", {}, r.operator), el("td", {}, r.witness || "–"),
    el("td", {}, r.certificate_sha256 ? el("a", { href: `/api/destruction/records/${r.id}/certificate` }, "PDF") : "–"))));
}

async function loadStations() {
  const stations = await api("GET", "/api/destruction/stations");
  document.getElementById("station").replaceChildren(...stations.map((s) => el("option", {}, s)));
}

const form = document.getElementById("run-form");
if (form) {
  loadStations();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const items = [...document.querySelectorAll('input[name="item"]:checked')].map((c) => c.value);
    const out = document.getElementById("outcomes");
    try {
      const results = await api("POST", "/api/destruction/run", {
        station: document.getElementById("station").value, witness: document.getElementById("witness").value, items });
      out.replaceChildren(...results.map((r) => el("li", { class: r.destroyed ? "" : "critical" },
        `${r.item}: ${r.destroyed ? "destroyed" : "NOT destroyed"} ${r.reason}`)));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
    loadQueue(); loadRecords();
  });
}
loadQueue(); loadRecords();
