// Destruction console: the approved queue, running a station with each step live, the records with their
// witness, machines, evidence image and certificate.
"use strict";
const CAN_RUN = Boolean(document.getElementById("console").dataset.canRun);
let stations = [];

async function loadQueue() {
  const queue = await api("GET", "/api/destruction/queue");
  document.getElementById("queue-empty").hidden = queue.length > 0;
  document.getElementById("queue").replaceChildren(...queue.map((q) => el("tr", { "data-item": q.item },
    ...(CAN_RUN ? [el("td", {}, el("input", { type: "checkbox", name: "item", value: q.item }))] : []),
    el("td", {}, q.item), el("td", {}, q.title), el("td", {}, q.kind), el("td", {}, q.level), el("td", {}, q.method),
    el("td", {}, q.status),
    el("td", {}, q.approval, q.other_approvals.length ? el("span", { class: "muted" }, ` (also ${q.other_approvals.join(", ")})`) : ""))));
}

function evidenceLink(sha) {
  return sha ? el("a", { href: `/api/destruction/evidence/${sha}`, target: "_blank" }, "image") : "–";
}

async function loadRecords() {
  const records = await api("GET", "/api/destruction/records");
  document.getElementById("records").replaceChildren(...records.map((r) => el("tr", { "data-record": r.id },
    el("td", {}, r.id), el("td", {}, r.item),
    el("td", { class: r.outcome === "destroyed" ? "good outcome" : "bad outcome" }, r.outcome,
      r.outcome === "destroyed" ? "" : el("div", { class: "muted reason" }, r.reason)),
    el("td", { class: "machines" }, r.device_name), el("td", {}, r.operator), el("td", { class: "witness" }, r.witness || "–"),
    el("td", {}, r.approval || "–"), el("td", {}, evidenceLink(r.evidence_image_sha256)),
    el("td", {}, r.certificate_sha256 ? el("a", { class: "certificate", href: `/api/destruction/records/${r.id}/certificate` }, "PDF") : "–"))));
}

function showMachines() {
  const chosen = stations.find((s) => s.name === document.getElementById("station").value);
  document.getElementById("machines").textContent = chosen ? `Machines: ${chosen.machines.map((m) => m.name).join(", ")}` : "";
  document.getElementById("load-intake").hidden = !(chosen && chosen.simulated_intake);
}

async function loadStations() {
  stations = await api("GET", "/api/destruction/stations");
  const select = document.getElementById("station");
  select.replaceChildren(...stations.map((s) => el("option", { value: s.name }, s.name)));
  select.addEventListener("change", showMachines);
  showMachines();
}

// A busy station may answer the image late: ask once more before showing it as missing.
function retryOnce(e) {
  const img = e.target;
  if (img.dataset.retried) return;
  img.dataset.retried = "yes";
  setTimeout(() => { img.src = `${img.src.split("?")[0]}?retry=1`; }, 1000);
}

// Each step of a run, as the station publishes it.
function showStep(ev) {
  const details = el("dl", {}, ...ev.details.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const evidence = ev.details.find(([k, v]) => k === "evidence" && /^[0-9a-f]{64}$/.test(v));
  const item = el("li", { class: `step ${ev.severity}` }, el("span", { class: "muted" }, `${timeOf(ev.time_us)} `),
    el("strong", {}, ev.title), details,
    evidence ? el("img", { class: "evidence", alt: "particle analysis evidence", src: `/api/destruction/evidence/${evidence[1]}`,
      onerror: retryOnce }) : "");
  document.getElementById("steps").prepend(item);
}

function connect() {
  const state = document.getElementById("steps-state");
  const source = new EventSource("/api/destruction/live");
  source.onopen = () => { state.textContent = "live"; state.className = "pill live"; };
  source.onerror = () => { state.textContent = "reconnecting…"; state.className = "pill down"; };
  source.addEventListener("step", (msg) => showStep(JSON.parse(msg.data)));
}

function ticked() { return [...document.querySelectorAll('input[name="item"]:checked')].map((c) => c.value); }

async function loadWitnesses() {
  const people = await api("GET", "/api/destruction/witnesses");
  document.getElementById("witnesses").replaceChildren(...people.map((p) => el("option", { value: p.username }, p.name)));
}

// A lot the analysis could not verify waits in the tray: why, its evidence, another image or give up.
let waiting = null;

function showPending(p) {
  waiting = p;
  document.getElementById("reimage").hidden = !p;
  if (!p) return;
  document.getElementById("reimage-item").textContent = `${p.item} at ${p.station}`;
  document.getElementById("reimage-reason").textContent = p.reason;
  document.getElementById("reimage-frames").textContent = `Frames taken: ${p.frames} of at most ${p.max_frames}`;
  document.getElementById("reimage-witness").textContent = p.witness;
  const img = document.getElementById("reimage-evidence");
  delete img.dataset.retried;
  img.onerror = retryOnce;
  img.src = `/api/destruction/evidence/${p.evidence_image_sha256}`;
}

async function loadPending() {
  const pending = await api("GET", "/api/destruction/pending");
  const station = document.getElementById("station");
  showPending(pending.find((p) => station && p.station === station.value) || pending[0] || null);
}

function showOutcome(r) {
  const state = r.destroyed ? "destroyed" : (r.verification_pending ? "not verified yet" : "NOT destroyed");
  return el("li", { class: r.destroyed ? "outcome destroyed" : "outcome critical" }, `${r.item}: ${state} — ${r.reason}`);
}

const form = document.getElementById("run-form");
if (form) {
  loadStations();
  loadWitnesses();
  const out = document.getElementById("outcomes");
  document.getElementById("load-intake").addEventListener("click", async () => {
    try {
      const placed = await api("POST", "/api/destruction/intake", { station: document.getElementById("station").value, items: ticked() });
      out.replaceChildren(...placed.map((p) => el("li", { class: "intake" }, `${p.item} (tag ${p.epc}) placed on the intake`)));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren(el("li", {}, "running…"));
    try {
      const password = document.getElementById("witness-password");
      const body = { station: document.getElementById("station").value, witness: document.getElementById("witness").value,
        witness_password: password.value, items: ticked() };
      password.value = "";  // the witness's password is not left on the operator's screen
      const results = await api("POST", "/api/destruction/run", body);
      out.replaceChildren(...results.map((r) => showOutcome(r)));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
    loadQueue(); loadRecords(); loadPending();
  });
  document.getElementById("reimage-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const password = document.getElementById("reimage-password");
    const body = { station: waiting.station, witness: waiting.witness, witness_password: password.value };
    password.value = "";
    out.replaceChildren(el("li", {}, "taking another image…"));
    try {
      out.replaceChildren(showOutcome(await api("POST", "/api/destruction/reimage", body)));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
    loadQueue(); loadRecords(); loadPending();
  });
  document.getElementById("reimage-give-up").addEventListener("click", async () => {
    try {
      out.replaceChildren(showOutcome(await api("POST", "/api/destruction/give-up", { station: waiting.station })));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
    loadQueue(); loadRecords(); loadPending();
  });
}
connect();
loadQueue(); loadRecords();
if (form) loadPending();
