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

// Each step of a run, as the station publishes it.
function showStep(ev) {
  const details = el("dl", {}, ...ev.details.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const evidence = ev.details.find(([k, v]) => k === "evidence" && /^[0-9a-f]{64}$/.test(v));
  const item = el("li", { class: `step ${ev.severity}` }, el("span", { class: "muted" }, `${timeOf(ev.time_us)} `),
    el("strong", {}, ev.title), details,
    evidence ? el("img", { class: "evidence", alt: "particle analysis evidence", src: `/api/destruction/evidence/${evidence[1]}` }) : "");
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

const form = document.getElementById("run-form");
if (form) {
  loadStations();
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
      out.replaceChildren(...results.map((r) => el("li", { class: r.destroyed ? "outcome destroyed" : "outcome critical" },
        `${r.item}: ${r.destroyed ? "destroyed" : "NOT destroyed"} — ${r.reason}`)));
    } catch (err) { out.replaceChildren(el("li", { class: "critical" }, err.message)); }
    loadQueue(); loadRecords();
  });
}
connect();
loadQueue(); loadRecords();
