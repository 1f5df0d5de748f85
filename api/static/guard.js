// Guard console: the site's alarm book (live over SSE, the same book at every station), acknowledgement and
// resolution, escalation cues, the door board with Override only on a door with a fresh block, device health.
// At the centre (data-centre): every site's book with its site, acknowledgements, resolutions and overrides sent
// through the centre's routes to the site's edge, shown pending until the site confirms; no door board (doors are
// the edges').
"use strict";
const consoleEl = document.getElementById("console");
const CAN_ACT = Boolean(consoleEl.dataset.canAct);
const CENTRE = Boolean(consoleEl.dataset.centre);
const BLOCK_KINDS = new Set(["exit_blocked", "entry_blocked"]); // a refused badge: its source is the door
const TIME_ZONE = consoleEl.dataset.timeZone || "UTC";
const alarmList = document.getElementById("alarms");
const technicalList = document.getElementById("technical");
const events = document.getElementById("events");
const feedState = document.getElementById("feed-state");
const dateTime = new Intl.DateTimeFormat("en-GB", {
  timeZone: TIME_ZONE, year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
let audio = null;
let known = null; // alarm keys shown already (a new critical one sounds; none on the first load)

// An alarm's id is its site's: at the centre two sites' alarm 7 are two alarms.
function alarmKey(a) { return CENTRE ? `${a.site}/${a.id}` : String(a.id); }
function alarmPath(a) {
  return CENTRE ? `/api/centre/sites/${encodeURIComponent(a.site)}/alarms/${a.id}` : `/api/guard/alarms/${a.id}`;
}

// Dates with times, in the site's time zone.
function when(value) { return value == null ? "" : dateTime.format(new Date(value)); }
function whenUs(us) { return when(us / 1000); }

document.getElementById("sound").addEventListener("click", (e) => {
  audio = audio || new AudioContext();
  audio.resume();
  e.target.textContent = "Sound on";
});

// A sound cue; counted on the body so a station's cues can be checked (tests, and a stuck speaker).
function cue(kind) {
  document.body.dataset.cues = String(Number(document.body.dataset.cues || 0) + 1);
  document.body.dataset.lastCue = kind;
  if (!audio || audio.state !== "running") return;
  const tones = kind === "escalation" ? [988, 740, 988, 740, 988] : kind === "critical" ? [880, 660, 880] : [660];
  tones.forEach((freq, i) => {
    const osc = audio.createOscillator(); const gain = audio.createGain();
    osc.frequency.value = freq; osc.type = "square"; gain.gain.value = kind === "escalation" ? 0.15 : 0.08;
    osc.connect(gain).connect(audio.destination);
    const t = audio.currentTime + i * 0.22; osc.start(t); osc.stop(t + 0.18);
  });
}

function act(label, cls, handler) {
  return el("button", { class: cls, type: "button", onclick: async (e) => {
    e.target.disabled = true;
    try { await handler(); } catch (err) { showError(err.message); } finally { e.target.disabled = false; }
  } }, label);
}

function showError(message) {
  const note = document.getElementById("control-state");
  note.textContent = message; note.className = "flash error";
}

function alarmItem(a) {
  const details = el("dl");
  const add = (label, value) => { if (value) details.append(el("dt", {}, label), el("dd", {}, value)); };
  add("person", a.person); add("badge", a.badge); add("items", a.items.join(", "));
  add("detail", a.detail);
  const node = el("li", {
    class: `alarm ${a.severity} ${a.state}${a.escalated_at && a.state === "open" ? " escalated" : ""}`,
    "data-alarm": a.id, "data-state": a.state, "data-key": `${alarmKey(a)} ${a.state}`, ...(CENTRE ? { "data-site": a.site } : {}),
  },
  el("div", { class: "title" }, ...(CENTRE ? [el("span", { class: "pill site" }, a.site)] : []), a.sentence,
    el("span", { class: "pill state" }, a.state)),
  el("div", { class: "muted" }, `${a.source} · ${when(a.raised_at)}${a.repeats > 1 ? ` · ${a.repeats} times, last ${when(a.last_at)}` : ""}`),
  details);
  if (a.reasons.length) node.append(el("ul", { class: "reasons" }, ...a.reasons.map((r) => el("li", { title: r.id }, r.sentence))));
  if (a.has_frame && !CENTRE) node.append(el("img", { src: `/api/guard/alarms/${a.id}/frame.png`, alt: "camera frame at the door" }));
  if (a.procedure.length) node.append(el("ol", { class: "steps" }, ...a.procedure.map((s) => el("li", {}, s))));
  if (a.state === "acknowledged") {
    node.append(el("div", { class: "muted acked-note" },
      `acknowledged by ${a.acknowledged_by} at ${when(a.acknowledged_at)}${a.acknowledge_note ? `: ${a.acknowledge_note}` : ""}`));
  } else if (a.ack_sent_by) {
    node.append(el("div", { class: "muted ack-sent" }, `acknowledgement sent by ${a.ack_sent_by}; ${a.site} has not confirmed it yet`));
  }
  if (a.resolve_sent_by) {
    node.append(el("div", { class: "muted resolve-sent" },
      `resolution sent by ${a.resolve_sent_by}: pending until ${a.site} confirms it (it is applied once when the site is reachable)`));
  }
  if (a.refused) node.append(el("div", { class: "flash error refused" }, a.refused));
  if (CAN_ACT) {
    const note = el("input", { class: "note-text", placeholder: a.state === "open" ? "note (optional)" : "what was done", maxlength: "2000" });
    if (a.state === "open") {
      node.append(el("div", { class: "note" }, note, act("Acknowledge", "primary ack", async () => {
        await api("POST", `${alarmPath(a)}/ack`, { note: note.value });
        await refreshAlarms();
      })));
    } else if (a.state === "acknowledged" && !a.resolve_sent_by) {
      node.append(el("div", { class: "note" }, note, act("Resolve", "resolve", async () => {
        await api("POST", `${alarmPath(a)}/resolve`, { note: note.value });
        await refreshAlarms();
      })));
    }
    // At the centre the door board is the edges': a refused badge is overridden from its alarm.
    if (CENTRE && a.state !== "resolved" && BLOCK_KINDS.has(a.kind)) {
      node.append(el("button", { class: "danger override", type: "button", "data-portal": a.source,
        onclick: () => openOverride(a.source, `${a.person} with ${a.items.join(", ") || "no items"}: ${[...a.reasons.map((r) => r.sentence), a.detail].filter(Boolean).join(" ")}`, a.id, a.site) },
      "Override…"));
    }
  }
  return node;
}

// An alarm whose view has not changed keeps its node, so a redraw never replaces the button under a guard's
// pointer (a click whose press and release land on two different nodes is lost).
let drawnAlarms = new Map(); // alarm key -> { view: its JSON, node }
function drawn(a, shown) {
  const view = JSON.stringify(a);
  const before = drawnAlarms.get(alarmKey(a));
  const node = before && before.view === view ? before.node : alarmItem(a);
  shown.set(alarmKey(a), { view, node });
  return node;
}

// `list` made to hold `nodes` in order, moving only the nodes out of place.
function reconcile(list, nodes) {
  nodes.forEach((node, i) => { if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null); });
  while (list.children.length > nodes.length) list.lastChild.remove();
}

async function refreshAlarms() {
  const book = CENTRE ? byCategory(await api("GET", "/api/centre/alarms")) : await api("GET", "/api/guard/alarms");
  const fresh = book.security.filter((a) => known && !known.has(alarmKey(a)) && a.state === "open");
  // A note being typed survives the refresh (every site's events refresh the centre's book), in the same state.
  const typed = new Map([...document.querySelectorAll(".alarm .note-text")].filter((n) => n.value)
    .map((n) => [n.closest(".alarm").dataset.key, n.value]));
  const shown = new Map();
  reconcile(alarmList, book.security.map((a) => drawn(a, shown)));
  reconcile(technicalList, book.technical.map((a) => drawn(a, shown)));
  drawnAlarms = shown;
  for (const [key, value] of typed) {
    const input = document.querySelector(`.alarm[data-key="${CSS.escape(key)}"] .note-text`);
    if (input && !input.value) input.value = value;
  }
  document.getElementById("technical-count").textContent = String(book.technical.filter((a) => a.state === "open").length);
  document.getElementById("no-alarms").hidden = book.security.some((a) => a.state !== "resolved");
  if (known && fresh.length) cue(fresh.some((a) => a.severity === "critical") ? "critical" : "warning");
  known = new Set([...book.security, ...book.technical].map(alarmKey));
}

function byCategory(alarms) {
  return { security: alarms.filter((a) => a.category === "security"), technical: alarms.filter((a) => a.category === "technical") };
}

function logEvent(ev) {
  // The title says the way (exit or entry); a door kept shut by a resting item says which and since when.
  const keptShut = ev.details.filter(([label]) => label === "kept shut").map(([, sentence]) => ` · ${sentence}`).join("");
  events.prepend(el("li", { class: ev.severity }, `${whenUs(ev.time_us)} ${ev.source}: ${ev.title}${keptShut}`));
  while (events.children.length > 200) events.lastChild.remove();
}

let alarmsDue = null;
function alarmsSoon() { // several events in one burst: one fetch of the book
  if (alarmsDue) return;
  alarmsDue = setTimeout(() => { alarmsDue = null; refreshAlarms().catch((err) => showError(err.message)); }, 50);
}

function connect() {
  const source = new EventSource("/api/live");
  source.onopen = () => { feedState.textContent = "live"; feedState.className = "pill live"; alarmsSoon(); };
  source.onerror = () => { feedState.textContent = "reconnecting…"; feedState.className = "pill down"; };
  const handle = (msg) => {
    const ev = JSON.parse(msg.data);
    logEvent(ev);
    if (ev.kind === "escalation") cue("escalation");
    if (["alarm", "ack", "escalation"].includes(ev.kind)) alarmsSoon();
    if (!CENTRE && ["door", "health", "decision", "alarm"].includes(ev.kind)) refreshDoors();
  };
  for (const kind of ["decision", "alarm", "door", "health", "destruction", "ack", "escalation"]) source.addEventListener(kind, handle);
}

const HEALTH_CLASS = { online: "live", offline: "down", degraded: "degraded" };

async function refreshDoors() {
  const note = document.getElementById("control-state");
  try {
    const [doors, devices] = await Promise.all([api("GET", "/api/guard/doors"), api("GET", "/api/guard/devices")]);
    if (note.classList.contains("flash") === false) note.textContent = "";
    for (const d of doors) {
      const row = document.querySelector(`tr[data-portal="${d.portal}"]`);
      if (!row) continue;
      row.querySelector(".lock").textContent = d.released_by_fire_alarm ? "RELEASED (fire)" : d.locked ? "locked" : "unlocked";
      row.querySelector(".lock").className = `lock ${d.released_by_fire_alarm ? "bad" : "good"}`;
      row.querySelector(".door").textContent = d.open ? "open" : "closed";
      const links = row.querySelector(".links");
      // Unknown (no report yet) is grey, not red: only a device that stopped answering is an alarm colour.
      links.textContent = !d.panel_online ? "PANEL OFFLINE" : !d.readers_online ? "READERS OFFLINE" : d.links;
      links.className = `links ${!d.panel_online || !d.readers_online || d.links === "offline" ? "bad"
        : d.links === "online" ? "good" : d.links === "degraded" ? "warn" : "unknown"}`;
      const block = row.querySelector(".block");
      block.className = `block ${d.block ? "blocked" : "muted"}`;
      // Who and what, and until when it can be overridden; the reasons in full are on the alarm and the dialog.
      block.textContent = d.block ? `${blockWho(d.block)} · ${d.block.items.join(", ") || "no items"} · until ${when(d.block.fresh_until).slice(-8)}` : "–";
      if (d.block && d.block.kept_shut.length) block.append(...d.block.kept_shut.map((s) => el("div", { class: "kept-shut" }, s)));
      block.title = d.block ? d.block.reasons.map((r) => r.sentence).join(" ") : "";
      row.classList.toggle("has-block", Boolean(d.block));
      const cell = row.querySelector(".act");
      if (cell) {
        // Override only on a door with a fresh block; the same block keeps its button (a click is not lost to a redraw).
        const kept = cell.querySelector("button.override");
        if (!d.block) cell.replaceChildren();
        else if (!kept || kept.dataset.alarm !== String(d.block.alarm_id)) {
          cell.replaceChildren(el("button", { class: "danger override", type: "button", "data-portal": d.portal,
            "data-alarm": d.block.alarm_id, onclick: () => openOverride(d.portal, blockSentence(d.block), d.block.alarm_id) },
          "Override…"));
        }
      }
    }
    const list = document.getElementById("devices");
    list.replaceChildren(...devices.map((d) => el("li", {}, el("span", {
      class: `pill ${HEALTH_CLASS[d.health] || "unknown"}`, title: d.reason, "data-device": d.name,
    }, `${d.name}: ${d.health}`))));
  } catch (err) { note.textContent = err.message; }
}

// Who was refused, and which way: a refused entry is someone outside the door.
function blockWho(block) { return block.direction === "entry" ? `${block.person} (coming in)` : block.person; }

const dialog = document.getElementById("override-dialog");
const overrideError = document.getElementById("override-error");
function blockSentence(block) {
  return `${blockWho(block)} with ${block.items.join(", ") || "no items"}: ${[...block.reasons.map((r) => r.sentence), ...block.kept_shut].join(" ")}`;
}
// The dialog for the block at `portal` (of `site`, at the centre) that alarm `alarmId` was raised for.
function openOverride(portal, sentence, alarmId, site = "") {
  document.getElementById("override-portal").textContent = site ? `${site} / ${portal}` : portal;
  document.getElementById("override-block").textContent = sentence;
  document.getElementById("override-reason").value = "";
  document.getElementById("override-password").value = "";
  overrideError.hidden = true;
  dialog.dataset.portal = portal;
  dialog.dataset.alarm = alarmId ?? "";
  dialog.dataset.site = site;
  dialog.showModal();
}
document.getElementById("override-form").addEventListener("submit", async (e) => {
  if (e.submitter && e.submitter.value !== "ok") return;
  e.preventDefault(); // stay open until the site answers, so a refusal is read where it was asked
  overrideError.hidden = true;
  const body = {
    password: document.getElementById("override-password").value,
    reason: document.getElementById("override-reason").value,
  };
  if (dialog.dataset.alarm) body.alarm = Number(dialog.dataset.alarm);
  try {
    const portal = encodeURIComponent(dialog.dataset.portal);
    const done = await api("POST", dialog.dataset.site
      ? `/api/centre/sites/${encodeURIComponent(dialog.dataset.site)}/portals/${portal}/override`
      : `/api/guard/portals/${portal}/override`, body);
    dialog.close("done");
    const toast = document.getElementById("override-done");
    toast.textContent = `Door ${done.portal} opened for ${done.person} at ${when(done.at)}`;
    toast.hidden = false; setTimeout(() => { toast.hidden = true; }, 8000);
    if (!CENTRE) refreshDoors();
  } catch (err) {
    overrideError.textContent = err.message.replace(/^\d+: /, "");
    overrideError.hidden = false;
    document.getElementById("override-password").value = "";
  }
});

connect();
refreshAlarms().catch((err) => showError(err.message));
if (!CENTRE) { refreshDoors(); setInterval(refreshDoors, 5000); }
setInterval(alarmsSoon, 15000); // repeats of technical alarms are counted without an event
