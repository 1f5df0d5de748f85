// Muster list: refreshed from /api/guard/muster every two seconds; a guard exports it as a journalled record.
"use strict";
const CAN_EXPORT = Boolean(document.getElementById("muster-page").dataset.canAct);
const venues = document.getElementById("venues");

// A guard forgives a person's anti-passback state (their place is in doubt): reason asked, journalled by the site.
function forgiveButton(username) {
  return el("button", { type: "button", class: "forgive", "data-person": username, onclick: forgive }, "Forgive anti-passback");
}

async function forgive(e) {
  const username = e.target.dataset.person;
  const reason = prompt(`Why may ${username}'s next badge pass whatever their last known place?`);
  if (!reason) return;
  const state = document.getElementById("export-state");
  try { await api("POST", `/api/guard/people/${encodeURIComponent(username)}/forgive`, { reason }); state.textContent = `forgiven: ${username}`; }
  catch (err) { state.textContent = err.message; }
}

function list(cls, rows, empty, attr, key, text) {
  const ul = el("ul", { class: cls });
  for (const row of rows) {
    const li = el("li", { [attr]: row[key] }, text(row));
    if (CAN_EXPORT && attr === "data-person") li.append(" ", forgiveButton(row[key]));
    ul.append(li);
  }
  if (!rows.length) ul.append(el("li", { class: "muted" }, empty));
  return ul;
}

function show(muster) {
  document.getElementById("fire-state").textContent = muster.fire_release ? "FIRE RELEASE: doors released" : "no fire release";
  document.getElementById("muster-at").textContent = `as of ${muster.at.slice(11, 19)} UTC`;
  venues.replaceChildren(...muster.venues.map((v) => el("section", { class: "venue", "data-venue": v.venue },
    el("h2", {}, `${v.name} `, el("span", { class: "muted" }, `(${v.venue})`)),
    el("h3", {}, `People (${v.people.length})`),
    list("people", v.people, "nobody", "data-person", "username",
      (p) => `${p.name} (${p.username})${p.visitor ? " · visitor" : ""}${p.uncertain ? " · uncertain" : ""}`),
    el("h3", {}, `Items (${v.items.length})`),
    list("items", v.items, "none", "data-item", "item", (i) => `${i.item} · ${i.level} · ${i.title}`))));
  if (!muster.venues.length) venues.append(el("p", { class: "muted", id: "nobody" }, "Nobody and nothing is known to be inside any venue."));
}

async function refresh() {
  try { show(await api("GET", "/api/guard/muster")); } catch (err) { document.getElementById("muster-at").textContent = err.message; }
}
setInterval(refresh, 2000);

if (CAN_EXPORT) {
  for (const li of document.querySelectorAll("ul.people li[data-person]")) li.append(" ", forgiveButton(li.dataset.person));
  document.getElementById("export-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const state = document.getElementById("export-state");
    try {
      const answer = await api("POST", "/api/guard/muster/export", { note: document.getElementById("export-note").value });
      state.textContent = `exported: journal entry ${answer.journal_seq}`;
      show(answer.muster);
    } catch (err) { state.textContent = err.message; }
  });
}
