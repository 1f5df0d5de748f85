// Guard console: live alarms over SSE with an audible signal, acknowledgement, override, door states.
"use strict";
const CAN_ACT = Boolean(document.getElementById("console").dataset.canAct);
const alarms = document.getElementById("alarms");
const events = document.getElementById("events");
const feedState = document.getElementById("feed-state");
let audio = null;

document.getElementById("sound").addEventListener("click", (e) => {
  audio = audio || new AudioContext();
  audio.resume();
  e.target.textContent = "Sound on";
});

function beep(critical) {
  if (!audio || audio.state !== "running") return;
  const tones = critical ? [880, 660, 880] : [660];
  tones.forEach((freq, i) => {
    const osc = audio.createOscillator(); const gain = audio.createGain();
    osc.frequency.value = freq; osc.type = "square"; gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    const t = audio.currentTime + i * 0.22; osc.start(t); osc.stop(t + 0.18);
  });
}

function refreshEmpty() {
  document.getElementById("no-alarms").hidden = alarms.querySelector(".alarm:not(.acked)") !== null;
}

function showAlarm(ev) {
  const details = el("dl");
  for (const [label, value] of ev.details) details.append(el("dt", {}, label), el("dd", {}, value));
  const item = el("li", { class: `alarm ${ev.severity}`, "data-alarm": ev.alarm_id ?? "", "data-seq": ev.seq },
    el("div", { class: "title" }, ev.title), el("div", { class: "muted" }, `${ev.source} · ${timeOf(ev.time_us)}`), details);
  if (ev.image_png_b64) item.append(el("img", { src: `data:image/png;base64,${ev.image_png_b64}`, alt: "camera frame" }));
  if (CAN_ACT && ev.alarm_id != null) {
    const ack = el("button", { class: "primary ack", onclick: async () => {
      try { await api("POST", `/api/guard/alarms/${ev.alarm_id}/ack`); markAcked(ev.alarm_id); }
      catch (err) { alert(err.message); }
    } }, "Acknowledge");
    const over = el("button", { class: "danger", onclick: () => openOverride(ev.source) }, "Override…");
    item.append(el("div", { class: "row" }, ack, over));
  }
  alarms.prepend(item);
  refreshEmpty();
  beep(ev.severity === "critical");
}

function markAcked(alarmId) {
  for (const node of alarms.querySelectorAll(`[data-alarm="${alarmId}"]`)) {
    node.classList.add("acked"); node.querySelectorAll("button").forEach((b) => b.remove());
    node.append(el("div", { class: "muted acked-note" }, "acknowledged"));
  }
  refreshEmpty();
}

function logEvent(ev) {
  events.prepend(el("li", { class: ev.severity }, `${timeOf(ev.time_us)} ${ev.source}: ${ev.title}`));
  while (events.children.length > 200) events.lastChild.remove();
}

function connect() {
  const source = new EventSource("/api/live");
  source.onopen = () => { feedState.textContent = "live"; feedState.className = "pill live"; };
  source.onerror = () => { feedState.textContent = "reconnecting…"; feedState.className = "pill down"; };
  const handle = (msg) => {
    const ev = JSON.parse(msg.data);
    logEvent(ev);
    if (ev.kind === "alarm") showAlarm(ev);
    if (ev.kind === "ack" && ev.alarm_id != null) markAcked(ev.alarm_id);
    if (ev.kind === "door" || ev.kind === "health") refreshDoors();
  };
  for (const kind of ["decision", "alarm", "door", "health", "destruction", "ack"]) source.addEventListener(kind, handle);
}

async function refreshDoors() {
  const note = document.getElementById("control-state");
  try {
    const [doors, devices] = await Promise.all([api("GET", "/api/guard/doors"), api("GET", "/api/guard/devices")]);
    note.textContent = "";
    for (const d of doors) {
      const row = document.querySelector(`tr[data-portal="${d.portal}"]`);
      if (!row) continue;
      row.querySelector(".lock").textContent = d.released_by_fire_alarm ? "RELEASED (fire)" : d.locked ? "locked" : "unlocked";
      row.querySelector(".lock").className = `lock ${d.released_by_fire_alarm ? "bad" : "good"}`;
      row.querySelector(".door").textContent = d.open ? "open" : "closed";
      const links = row.querySelector(".links");
      links.textContent = d.panel_online && d.readers_online ? "online" : "OFFLINE";
      links.className = `links ${d.panel_online && d.readers_online ? "good" : "bad"}`;
    }
    const list = document.getElementById("devices");
    list.replaceChildren(...devices.map((d) => el("li", {}, el("span", { class: `pill ${d.health === "online" ? "live" : "down"}`, title: d.reason }, `${d.name}: ${d.health}`))));
  } catch (err) { note.textContent = err.message; }
}

const dialog = document.getElementById("override-dialog");
function openOverride(portal) {
  document.getElementById("override-portal").textContent = portal;
  document.getElementById("override-reason").value = "";
  dialog.dataset.portal = portal;
  dialog.showModal();
}
dialog.addEventListener("close", async () => {
  if (dialog.returnValue !== "ok") return;
  const reason = document.getElementById("override-reason").value;
  try { await api("POST", `/api/guard/portals/${encodeURIComponent(dialog.dataset.portal)}/override`, { reason }); }
  catch (err) { alert(err.message); }
});
document.querySelectorAll("button.override").forEach((b) => b.addEventListener("click", () => openOverride(b.dataset.portal)));

refreshEmpty();
connect();
refreshDoors();
setInterval(refreshDoors, 5000);
