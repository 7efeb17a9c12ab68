package main

// page is the board's client: a canvas that draws every cursor of the
// board and sends this pointer's position. Query parameters: board and
// name (a random guest name if missing).
const page = `<!doctype html>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>laf cursors</title>
<style>
html, body { margin: 0; height: 100%; font: 14px system-ui, sans-serif; }
body { display: flex; flex-direction: column; }
header { padding: .4em .8em; background: #222; color: #eee; }
canvas { flex: 1; width: 100%; min-height: 0; display: block; background: #fafafa; cursor: crosshair; touch-action: none; }
</style>
<header><b>laf cursors</b> · board <span id="board"></span> · <span id="status">connecting…</span> · <span id="members"></span></header>
<canvas id="board-canvas"></canvas>
<script>
const q = new URLSearchParams(location.search);
const board = q.get("board") || "lobby";
const name = q.get("name") || "guest" + Math.floor(Math.random() * 10000);
history.replaceState(null, "", "?board=" + encodeURIComponent(board) + "&name=" + encodeURIComponent(name));
document.getElementById("board").textContent = board;
const canvas = document.getElementById("board-canvas");
const ctx2d = canvas.getContext("2d");
const statusEl = document.getElementById("status");
const membersEl = document.getElementById("members");

let ws = null, me = 0, names = new Map(), cursors = [], dirty = true;
let pending = null, last = [0.5, 0.5], lastSent = 0;
window.cursors = { frames: 0, lists: 0, status: "connecting" }; // for end-to-end tests

function setStatus(s) { window.cursors.status = s; statusEl.textContent = s; }

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    "/ws?board=" + encodeURIComponent(board) + "&name=" + encodeURIComponent(name);
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { setStatus("connected as " + name); lastSent = 0; };
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      const m = JSON.parse(e.data);
      if (m.type === "hello") me = m.id;
      if (m.type === "members") {
        window.cursors.lists++;
        names = new Map(m.members.map((x) => [x.id, x.name]));
        membersEl.textContent = m.members.length + " here: " + m.members.map((x) => x.name).join(", ");
        dirty = true;
      }
      return;
    }
    // Cursor frame: seq, count, then count × (id, x, y), little-endian.
    const v = new DataView(e.data);
    const n = v.getUint32(4, true), list = [];
    for (let i = 0; i < n; i++) {
      const o = 8 + 12 * i;
      list.push({ id: v.getUint32(o, true), x: v.getFloat32(o + 4, true), y: v.getFloat32(o + 8, true) });
    }
    cursors = list;
    window.cursors.frames++;
    dirty = true;
  };
  ws.onclose = (e) => {
    setStatus("closed " + e.code + (e.reason ? " " + e.reason : "") + "; reconnecting");
    ws = null;
    // A hidden tab may stop sending and be closed as idle: come back
    // when it is shown again.
    if (e.code !== 1003) setTimeout(() => { if (!document.hidden) connect(); }, 1000);
  };
}
document.addEventListener("visibilitychange", () => { if (!document.hidden && !ws) connect(); });

function send(x, y) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const b = new ArrayBuffer(8), v = new DataView(b);
  v.setFloat32(0, x, true);
  v.setFloat32(4, y, true);
  ws.send(b);
  lastSent = performance.now();
}
canvas.addEventListener("pointermove", (e) => {
  const r = canvas.getBoundingClientRect();
  pending = [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height];
});
// At most 60 positions a second; and the last one again every 2 s, so
// that the server's read idle timeout (10 s) closes only tabs that stop.
setInterval(() => {
  if (pending) { last = pending; pending = null; send(last[0], last[1]); }
  else if (performance.now() - lastSent > 2000) send(last[0], last[1]);
}, 1000 / 60);

function draw() {
  requestAnimationFrame(draw);
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); dirty = true;
  }
  if (!dirty) return;
  dirty = false;
  ctx2d.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx2d.clearRect(0, 0, w, h);
  for (const c of cursors) {
    const x = c.x * w, y = c.y * h;
    ctx2d.fillStyle = "hsl(" + (c.id * 137 % 360) + " 70% 45%)";
    ctx2d.beginPath();
    ctx2d.moveTo(x, y); ctx2d.lineTo(x + 4, y + 16); ctx2d.lineTo(x + 11, y + 11);
    ctx2d.closePath(); ctx2d.fill();
    ctx2d.fillText((names.get(c.id) || "#" + c.id) + (c.id === me ? " (you)" : ""), x + 12, y + 24);
  }
}
connect();
requestAnimationFrame(draw);
</script>
`
