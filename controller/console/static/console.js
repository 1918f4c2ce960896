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

// The terminal: xterm.js over the console's WebSocket (controller/console/terminal.py).
function openTerminal() {
  const box = document.getElementById("terminal");
  const status = document.getElementById("term-status");
  if (!box || !window.Terminal) return;
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, scrollback: 5000 });
  const fit = window.FitAddon ? new window.FitAddon.FitAddon() : null;
  if (fit) term.loadAddon(fit);
  term.open(box);
  if (fit) fit.fit();
  const say = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  const url = new URL(box.dataset.ws, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("cols", String(term.cols));
  url.searchParams.set("rows", String(term.rows));
  const ws = new WebSocket(url.toString());
  ws.binaryType = "arraybuffer";
  let ended = false;
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      term.write(new Uint8Array(event.data));
      return;
    }
    const frame = JSON.parse(event.data);
    if (frame.t === "started") {
      box.dataset.session = frame.session;
      say("active", "session " + frame.session + " on " + frame.host);
      term.focus();
    } else if (frame.t === "ended") {
      ended = true;
      box.dataset.exitCode = String(frame.exit_code);
      say("ended", "session ended (" + frame.reason + "), exit code " + frame.exit_code);
    } else if (frame.t === "error") {
      ended = true;
      say("error", frame.message + (frame.hint ? " — " + frame.hint : ""));
    }
  };
  ws.onclose = () => {
    if (!ended) say("closed", "disconnected");
  };
  term.onData((data) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: "i", d: data }));
  });
  term.onResize((size) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: "r", c: size.cols, r: size.rows }));
  });
  window.addEventListener("resize", () => {
    if (fit) fit.fit();
  });
}

// A session's recording, replayed with asciinema-player; the speed buttons start it again at that speed.
function openPlayer() {
  const box = document.getElementById("player");
  if (!box || !window.AsciinemaPlayer) return;
  let player = null;
  const start = (speed) => {
    if (player && player.dispose) player.dispose();
    box.textContent = "";
    player = window.AsciinemaPlayer.create(box.dataset.cast, box, {
      speed: speed,
      cols: Number(box.dataset.cols),
      rows: Number(box.dataset.rows),
      autoPlay: true,
      preload: true,
      fit: "width",
    });
    box.dataset.speed = String(speed);
  };
  document.querySelectorAll(".speed-button").forEach((button) => {
    button.addEventListener("click", () => {
      document.querySelectorAll(".speed-button").forEach((b) => b.classList.remove("here"));
      button.classList.add("here");
      start(Number(button.dataset.speed));
    });
  });
  start(1);
}

document.addEventListener("DOMContentLoaded", openTerminal);
document.addEventListener("DOMContentLoaded", openPlayer);
