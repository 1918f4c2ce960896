// fleetops console: the little JavaScript the pages use (served from the console itself, as
// the Content-Security-Policy requires; no inline script anywhere).
"use strict";

// A command's results: fetched again every second until the command is done.
function followResults() {
  const box = document.getElementById("results");
  if (!box || box.dataset.done === "1") return;
  const url = box.dataset.refresh;
  const tick = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      box.innerHTML = await response.text(); // rendered (and escaped) by the server
      const summary = document.getElementById("summary");
      if (summary && summary.dataset.done === "1") {
        box.dataset.done = "1";
        return;
      }
    } catch (e) {
      // the controller may be restarting: try again
    }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", followResults);
