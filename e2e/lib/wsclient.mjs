// A thin test wrapper over a `ws` client: it queues what arrives so that a
// test can await the next message, the close, or a count of pings.

import WebSocket from 'ws';
import { TIMEOUT, waitFor, within } from './servers.mjs';

export class Client {
  /** Opens a connection to url and resolves once it is open. */
  static async open(url, options = {}) {
    const c = new Client(new WebSocket(url, { handshakeTimeout: TIMEOUT, ...options }));
    await within(c.opened, `WebSocket open on ${url}`);
    return c;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = []; // { data: Buffer, isBinary } not yet taken by next()
    this.waiters = [];
    this.pings = 0;
    this.errors = [];
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        reject(Object.assign(new Error(`unexpected response: HTTP ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        req.destroy();
      });
    });
    this.opened.catch(() => {}); // handled by whoever awaits it
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', (err) => this.errors.push(err));
    ws.on('ping', () => { this.pings++; });
    ws.on('message', (data, isBinary) => {
      this.messages.push({ data, isBinary });
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('close', () => this.waiters.splice(0).forEach((w) => w()));
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data, options) {
    return new Promise((resolve, reject) => this.ws.send(data, options, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves to the next message { data, isBinary }; rejects if the connection closes first. */
  next(timeout = TIMEOUT) {
    return within(new Promise((resolve, reject) => {
      const check = () => {
        if (this.messages.length) return resolve(this.messages.shift());
        if (this.ws.readyState === WebSocket.CLOSED) return reject(new Error('connection closed while waiting for a message'));
        this.waiters.push(check);
      };
      check();
    }), 'a WebSocket message', timeout);
  }

  /** The next message, which must be text. */
  async nextText() {
    const m = await this.next();
    if (m.isBinary) throw new Error(`got a binary message ${m.data.toString('hex')}, want text`);
    return m.data.toString('utf8');
  }

  /** The next message, which must be text holding JSON. */
  async nextJSON() {
    return JSON.parse(await this.nextText());
  }

  /** Resolves to { code, reason } of the close event. */
  waitClose(timeout = TIMEOUT) {
    return within(this.closed, 'the WebSocket to close', timeout);
  }

  /** Resolves once at least n pings have arrived. */
  waitPings(n, timeout = TIMEOUT) {
    return waitFor(() => this.pings >= n, () => `${n} pings (got ${this.pings})`, { timeout });
  }

  /** Closes without waiting; safe to call on a closed client. */
  terminate() {
    this.ws.terminate();
  }
}
