// Auditor view: journal status, incidents with their 24-hour clock, an item's trail.
"use strict";
let incidents = [];
let loadedAt = Date.now();

function clock(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m ${String(s % 60).padStart(2, "0")}s`;
  return seconds < 0 ? `OVERDUE by ${text}` : text;
}

function drawIncidents() {
  const elapsed = (Date.now() - loadedAt) / 1000;
  document.getElementById("incidents").replaceChildren(...incidents.map((i) => {
    const left = i.seconds_left - elapsed;
    return el("tr", {}, el("td", {}, i.id), el("td", {}, i.kind), el("td", {}, i.state),
      el("td", { class: left < 0 && i.state === "open" ? "clock overdue" : "clock" }, i.state === "open" ? clock(left) : "reported"),
      el("td", {}, i.description), el("td", {}, el("a", { href: `/api/audit/incidents/${i.id}/evidence.zip` }, "evidence.zip")));
  }));
}

async function load() {
  const status = await api("GET", "/api/audit/journal");
  const node = document.getElementById("journal-status");
  node.textContent = status.ok ? `intact · ${status.entries} entries` : `BROKEN at entry ${status.first_bad_seq}: ${status.problem}`;
  node.className = `big ${status.ok ? "good" : "bad"}`;
  incidents = await api("GET", "/api/audit/incidents");
  loadedAt = Date.now();
  drawIncidents();
}

document.getElementById("trail-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = document.getElementById("trail");
  try {
    const t = await api("GET", `/api/audit/items/${encodeURIComponent(document.getElementById("trail-key").value)}/trail`);
    out.replaceChildren(
      el("p", { class: "big" }, `${t.item.register_number}/${t.item.copy_number} ${t.item.title} (${t.item.level}, ${t.item.status})`),
      el("p", {}, t.last_seen ? `Last seen ${t.last_seen.at} at ${t.last_seen.payload.portal}` : "No movement recorded."),
      el("h3", {}, "Who held or read it"),
      el("ul", {}, ...t.access.map((a) => el("li", {}, `${a.at} ${a.person} (${a.how})`))),
      el("h3", {}, "Journal"),
      el("ol", { class: "events" }, ...t.journal.map((j) => el("li", {}, `#${j.seq} ${j.at} ${j.actor} ${j.action} ${j.subject}`))));
  } catch (err) { out.replaceChildren(el("p", { class: "flash error" }, err.message)); }
});

load();
setInterval(drawIncidents, 1000);
setInterval(load, 30000);
