// Auditor pages: the journal head with the anchors' verdict, the journal browser (filters, pages), an item's
// trail, incidents with their 24-hour clock and actions, inventory sweeps and their reconciliation.
"use strict";
const $ = (id) => document.getElementById(id);

// ---- journal head, anchors, verification ----
const ANCHOR_TEXT = { anchored: "anchored", not_anchored: "not anchored yet", broken: "DOES NOT MATCH", not_configured: "not configured" };

async function loadHead() {
  const a = await api("GET", "/api/audit/anchors");
  $("head-seq").textContent = a.head_seq;
  $("head-at").textContent = a.head_at ? `(${a.head_at.slice(0, 19).replace("T", " ")} UTC)` : "";
  $("head-hash").textContent = a.head_hash;
  const state = $("anchor-state");
  state.textContent = ANCHOR_TEXT[a.state] || a.state;
  state.className = `pill ${a.state === "anchored" ? "live" : a.state === "broken" ? "down" : ""}`;
  state.dataset.state = a.state;
  $("anchor-detail").textContent = a.state === "anchored"
    ? `${a.anchors} anchor(s) in ${a.folder}; newest at sequence ${a.newest_seq}, ${a.newest_taken_at}`
    : a.problem;
}

async function verifyChain() {
  const node = $("journal-status");
  node.textContent = "checking…";
  const s = await api("GET", "/api/audit/journal");
  node.textContent = s.ok ? `intact · ${s.entries} entries` : `BROKEN at entry ${s.first_bad_seq}: ${s.problem}`;
  node.className = s.ok ? "good" : "bad";
}

// ---- journal browser: newest first, paged by sequence number ----
let pages = [null];  // the `before` of each page seen; the last is the current one
let nextBefore = null;

function filterQuery() {
  const form = $("journal-filter");
  const q = new URLSearchParams();
  for (const name of ["actor", "action", "subject"]) if (form.elements[name].value.trim()) q.set(name, form.elements[name].value.trim());
  for (const name of ["since", "until"]) if (form.elements[name].value) q.set(name, `${form.elements[name].value}:00+00:00`);
  return q;
}

function summary(payload) {
  return Object.entries(payload).slice(0, 6).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
}

async function loadJournal() {
  const q = filterQuery();
  q.set("limit", "25");
  const before = pages[pages.length - 1];
  if (before) q.set("before", before);
  const page = await api("GET", `/api/audit/journal/entries?${q}`);
  $("journal-matched").textContent = `${page.matched} matching entr${page.matched === 1 ? "y" : "ies"}`;
  $("journal-rows").replaceChildren(...page.entries.map((e) => el("tr", { "data-seq": e.seq, title: `hash ${e.hash}` },
    el("td", {}, e.seq), el("td", {}, e.at.slice(0, 19).replace("T", " ")), el("td", { class: "actor" }, e.actor),
    el("td", { class: "action" }, e.action), el("td", { class: "subject" }, e.subject), el("td", { class: "details" }, summary(e.payload)))));
  nextBefore = page.next_before;
  $("older").disabled = nextBefore === null;
  $("newer").disabled = pages.length <= 1;
  $("page-no").textContent = `page ${pages.length}`;
}

// ---- item trail ----
async function showTrail(e) {
  e.preventDefault();
  const out = $("trail");
  try {
    const t = await api("GET", `/api/audit/items/${encodeURIComponent($("trail-key").value)}/trail`);
    out.replaceChildren(
      el("p", { class: "big" }, `${t.item.register_number}/${t.item.copy_number} ${t.item.title} (${t.item.level}, ${t.item.status})`),
      el("p", {}, t.last_seen ? `Last seen ${t.last_seen.at} at ${t.last_seen.payload.portal}` : "No movement recorded."),
      el("h3", {}, "Who held or read it"),
      el("ul", {}, ...t.access.map((a) => el("li", {}, `${a.at} ${a.person} (${a.how})`))),
      el("h3", {}, "Journal"),
      el("ol", { class: "events" }, ...t.journal.map((j) => el("li", {}, `#${j.seq} ${j.at} ${j.actor} ${j.action} ${j.subject}`))));
  } catch (err) { out.replaceChildren(el("p", { class: "flash error" }, err.message)); }
}

if ($("journal-filter")) {
  $("journal-filter").addEventListener("submit", (e) => { e.preventDefault(); pages = [null]; loadJournal(); });
  $("journal-filter").addEventListener("reset", () => setTimeout(() => { pages = [null]; loadJournal(); }));
  $("older").addEventListener("click", () => { pages.push(nextBefore); loadJournal(); });
  $("newer").addEventListener("click", () => { pages.pop(); loadJournal(); });
  $("verify").addEventListener("click", verifyChain);
  $("trail-form").addEventListener("submit", showTrail);
  loadHead(); verifyChain(); loadJournal();
  setInterval(loadHead, 30000);
}

// ---- incidents: the 24-hour clock, remedial actions, "reported" ----
let incidents = [];
let loadedAt = Date.now();

function clock(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m ${String(s % 60).padStart(2, "0")}s`;
  return seconds < 0 ? `OVERDUE by ${text}` : text;
}

function drawClocks() {
  const elapsed = (Date.now() - loadedAt) / 1000;
  for (const i of incidents) {
    const cell = document.querySelector(`tr[data-incident="${i.id}"] td.clock`);
    if (!cell) continue;
    const left = i.seconds_left - elapsed;
    cell.textContent = i.state === "open" ? clock(left) : "reported";
    cell.className = left < 0 && i.state === "open" ? "clock overdue" : "clock";
  }
}

async function addAction(id, input) {
  if (!input.value.trim()) return;
  try { await api("POST", `/api/audit/incidents/${id}/actions`, { text: input.value }); } catch (err) { alert(err.message); }
  loadIncidents();
}

async function markReported(id) {
  try { await api("POST", `/api/audit/incidents/${id}/reported`); } catch (err) { alert(err.message); }
  loadIncidents();
}

async function loadIncidents() {
  incidents = await api("GET", "/api/audit/incidents");
  loadedAt = Date.now();
  $("no-incidents").hidden = incidents.length > 0;
  $("incidents").replaceChildren(...incidents.map((i) => {
    const input = el("input", { class: "action-text", placeholder: "remedial action taken", size: "24" });
    return el("tr", { "data-incident": i.id, class: `state-${i.state}` },
      el("td", {}, i.id), el("td", {}, i.kind), el("td", {}, i.opened_at.slice(0, 19).replace("T", " ")),
      el("td", { class: "state" }, i.state), el("td", { class: "clock" }, ""), el("td", {}, i.description),
      el("td", {}, el("ol", { class: "events actions" }, ...i.actions.map((a) => el("li", {}, a))),
        el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); addAction(i.id, input); } }, input,
          el("button", { type: "submit", class: "add-action" }, "Add"))),
      el("td", {}, i.state === "open" ? el("button", { type: "button", class: "reported primary", onclick: () => markReported(i.id) }, "Mark reported") : "",
        " ", el("a", { href: `/api/audit/incidents/${i.id}/evidence.zip` }, "evidence.zip")));
  }));
  drawClocks();
}

if ($("incidents")) {
  loadIncidents();
  setInterval(drawClocks, 1000);
  setInterval(loadIncidents, 30000);
}

// ---- inventory: start a sweep, see its reconciliation ----
function reconciliation(r) {
  const parts = [["missing", r.missing], ["registered elsewhere", r.elsewhere], ["unregistered", r.unregistered],
    ["destroyed but seen", r.destroyed_seen]].filter(([, v]) => v && v.length);
  return parts.length ? parts.map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") : "all present";
}

async function loadCounts() {
  const counts = await api("GET", "/api/audit/inventory");
  $("counts").replaceChildren(...counts.map((c) => el("tr", { "data-count": c.id },
    el("td", {}, c.id), el("td", {}, c.venue), el("td", {}, c.at.slice(0, 19).replace("T", " ")), el("td", {}, c.counted_by),
    el("td", {}, c.method), el("td", {}, c.present), el("td", {}, reconciliation(c.result)))));
}

if ($("counts")) {
  const form = $("sweep-form");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("sweep-result");
    out.replaceChildren(el("p", {}, "sweeping…"));
    try {
      const r = await api("POST", "/api/audit/inventory/sweep", { venue: $("sweep-venue").value });
      out.replaceChildren(el("p", { class: `big ${r.clean ? "good" : "bad"}`, id: "sweep-verdict" }, r.clean ? `${r.venue}: all present` : `${r.venue}: discrepancies`),
        el("dl", { class: "facts" }, ...[["present", r.present], ["missing", r.missing], ["registered elsewhere", r.elsewhere],
          ["unregistered tags", r.unregistered], ["destroyed but seen", r.destroyed_seen]]
          .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v.length ? v.join(", ") : "none")])));
    } catch (err) { out.replaceChildren(el("p", { class: "flash error" }, err.message)); }
    loadCounts();
  });
  loadCounts();
}
