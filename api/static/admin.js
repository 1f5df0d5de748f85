// Administrator's pages: live device status beside each device, and the label preview on demand.
"use strict";

async function refreshHealth() {
  const cells = document.querySelectorAll("[data-health-of]");
  if (!cells.length) return;
  let devices;
  try { devices = await api("GET", "/api/guard/devices"); } catch { return; }  // no site connected: leave as is
  const byName = new Map(devices.map((d) => [d.name, d]));
  for (const cell of cells) {
    const found = byName.get(cell.dataset.healthOf);
    const health = found ? found.health : "not running";
    const pill = el("span", { class: `pill health-${found ? found.health : "none"}`, title: found ? found.reason : "" }, health);
    cell.replaceChildren(pill);
  }
}

const previewButton = document.getElementById("label-preview-button");
if (previewButton) {
  previewButton.addEventListener("click", () => {
    const image = document.getElementById("label-preview");
    image.src = `${previewButton.dataset.src}?t=${Date.now()}`;  // each preview is a label given out
    image.hidden = false;
  });
}

if (document.querySelector("[data-health-of]")) {
  refreshHealth();
  setInterval(refreshHealth, 2000);
}
