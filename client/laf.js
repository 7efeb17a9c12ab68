// laf's browser client: one WebSocket to a laf Endpoint that reconnects
// by itself and resumes the rooms it was getting published messages from.
// An ES module with no dependencies and no build step; the server serves
// it with laf.ClientScript().
//
//   import { LafSocket } from '/laf.js';
//   const ws = new LafSocket('/ws');
//   ws.addEventListener('message', (e) => console.log(e.detail.room, e.detail.pos, e.detail.data));
//   ws.addEventListener('recovered', (e) => { if (!e.detail.recovered) loadSnapshot(e.detail.room); });
//
// Events, each a CustomEvent whose detail is:
//   open       {}                              each time a connection opens
//   message    {data, room, pos, binary}       a message; room and pos only
//                                              for a published one (data is
//                                              then the envelope's data,
//                                              parsed), binary only then
//   recovered  {room, recovered, pos}          the server's answer to
//                                              Socket.Resume for room
//   close      {code, reason, reconnecting}    each time a connection closes
//
// On reconnecting, it adds the query parameter laf_since to the URL: a
// JSON object from each room to the position ("EPOCH:OFFSET") of the last
// published message it got from it. laf.Since parses it for the Func, and
// Socket.Resume joins a room from it. Reconnects wait a random time
// between 0 and min(maxDelay, minDelay * 2^attempt) ("full jitter"); the
// attempt count starts again once a connection opens.

export class LafSocket extends EventTarget {
  #url; #protocols; #minDelay; #maxDelay;
  #ws = null; #attempt = 0; #timer = null; #closed = false;
  #positions = new Map();

  constructor(url, { protocols, minDelay = 250, maxDelay = 15000 } = {}) {
    super();
    this.#url = url;
    this.#protocols = protocols;
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
    this.#connect();
  }

  /** The last position got from each room, as an object. */
  get positions() { return Object.fromEntries(this.#positions); }

  /** Whether a connection is open. */
  get open() { return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN; }

  /** Sends a string or binary data; false if no connection is open. */
  send(data) {
    if (!this.open) return false;
    this.#ws.send(data);
    return true;
  }

  /** Closes the connection and stops reconnecting. */
  close(code = 1000, reason = '') {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#ws) this.#ws.close(code, reason);
  }

  #connect() {
    const u = new URL(this.#url, location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    if (this.#positions.size > 0) {
      u.searchParams.set('laf_since', JSON.stringify(Object.fromEntries(this.#positions)));
    }
    const ws = new WebSocket(u, this.#protocols);
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      this.#attempt = 0;
      this.#emit('open', {});
    };
    ws.onmessage = (e) => this.#message(e.data);
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      const reconnecting = !this.#closed;
      this.#emit('close', { code: e.code, reason: e.reason, reconnecting });
      if (reconnecting) {
        const cap = Math.min(this.#maxDelay, this.#minDelay * 2 ** this.#attempt);
        this.#attempt++;
        this.#timer = setTimeout(() => this.#connect(), Math.random() * cap);
      }
    };
  }

  #message(data) {
    if (typeof data === 'string' && data.startsWith('{')) {
      let m;
      try { m = JSON.parse(data); } catch { m = null; }
      if (m && m.laf === 'recovered' && typeof m.room === 'string') {
        if (m.pos) this.#positions.set(m.room, m.pos);
        else this.#positions.delete(m.room);
        this.#emit('recovered', { room: m.room, recovered: m.recovered === true, pos: m.pos || '' });
        return;
      }
      if (m && typeof m.room === 'string' && typeof m.pos === 'string' && 'data' in m) {
        this.#positions.set(m.room, m.pos);
        this.#emit('message', { data: m.data, room: m.room, pos: m.pos, binary: m.binary === true });
        return;
      }
    }
    this.#emit('message', { data });
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
