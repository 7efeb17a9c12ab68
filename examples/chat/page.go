package main

// page is the chat client. Query parameters: room, name, and ws (a
// WebSocket URL to use instead of this server's, for trying origins).
const page = `<!doctype html>
<meta charset="utf-8">
<title>laf chat</title>
<style>
body { font: 15px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
#messages { list-style: none; padding: 0; border: 1px solid #ccc; min-height: 12em; }
#messages li { padding: .2em .5em; }
#messages li.system { color: #777; font-style: italic; }
form { display: flex; gap: .5em; margin-top: .5em; }
#input { flex: 1; }
</style>
<h1>laf chat: <span id="room"></span></h1>
<p id="status">connecting…</p>
<ul id="messages"></ul>
<form id="form"><input id="input" autocomplete="off" placeholder="message, or JSON like {&quot;emoji&quot;:&quot;👋&quot;}"><button id="send">Send</button></form>
<script>
const q = new URLSearchParams(location.search);
const room = q.get("room") || "lobby";
const name = q.get("name") || "guest" + Math.floor(Math.random() * 1000);
document.getElementById("room").textContent = room;
const wsURL = q.get("ws") || ((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__websocket__");
const url = wsURL + "?room=" + encodeURIComponent(room) + "&name=" + encodeURIComponent(name);
const received = [];
window.chat = { received, status: "connecting" };

function add(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  document.getElementById("messages").appendChild(li);
}
function setStatus(s) {
  window.chat.status = s;
  document.getElementById("status").textContent = s;
}

const ws = new WebSocket(url);
ws.onopen = () => { window.chat.extensions = ws.extensions; setStatus("connected as " + name); };
ws.onclose = (e) => setStatus("closed " + e.code + (e.reason ? " " + e.reason : ""));
ws.onerror = () => setStatus("error");
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  received.push(m);
  // Every message names the room this socket is in, which "/join" changes.
  if (m.room) document.getElementById("room").textContent = m.room;
  switch (m.type) {
  case "join": add(m.from + " joined " + m.room, "system"); break;
  case "leave": add(m.from + " left " + m.room, "system"); break;
  case "json": add(m.from + " sent " + JSON.stringify(m.data)); break;
  default: add(m.from + ": " + m.text);
  }
};
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("input");
  if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
};
</script>
`
