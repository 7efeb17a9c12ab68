// laf's examples against Node's `ws` client, the WebSocket client most Node
// programs use.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Fixture, buildExamples, waitFor } from './lib/servers.mjs';
import { Client } from './lib/wsclient.mjs';

const OPTS = { timeout: 120_000 }; // a backstop: every wait inside gives up after 20 s

// Build before the first test, so that its time is not charged to a test.
await buildExamples();

/** A test with a Fixture: servers it starts are stopped at the end, and their output is shown if it fails. */
function e2e(name, fn) {
  return test(name, OPTS, (t) => Fixture.run(t, (fx) => fn(fx, t)));
}

/** Opens a client whose end of test cleanup is registered with fx. */
async function open(fx, url, options) {
  const c = await Client.open(url, options);
  fx.defer(() => c.terminate());
  return c;
}

/** Opens a client on push and reads its welcome; resolves to [client, id]. */
async function openPush(fx, push, options) {
  const c = await open(fx, push.wsURL, options);
  const welcome = await c.nextJSON();
  assert.equal(welcome.type, 'welcome');
  assert.match(welcome.id, /^[A-Za-z0-9_-]{22}$/, 'a socket id is 128 random bits in URL-safe base64');
  assert.deepEqual(Object.keys(welcome).sort(), ['id', 'type']);
  return [c, welcome.id];
}

/** Polls push's GET /events?id=ID until the close event is there; resolves to all events. */
function eventsUntilClose(push, id) {
  return waitFor(async () => {
    const evs = await push.json('/events?id=' + encodeURIComponent(id));
    return evs.some((e) => e.method === 'WebSocket:close') && evs;
  }, `the close event of socket ${id} in GET /events`);
}

const CONNECTION = { method: 'WebSocket:connection' };

describe('ws client, examples/hello', () => {
  e2e('greets on connection and acknowledges every message', async (fx) => {
    const hello = await fx.start('hello');
    const c = await open(fx, hello.wsURL);
    assert.equal(await c.nextText(), 'hi connection succeed');
    for (const msg of ['hi', 'héllo wörld ✓', '']) {
      await c.send(msg);
      assert.equal(await c.nextText(), 'I have received your message');
    }
    // The handler saw the text as sent (hello logs it).
    await waitFor(() => hello.stderr.includes('data="héllo wörld ✓"'), 'hello to log the UTF-8 message');
    assert.ok(c.isOpen);
    c.ws.close(1000);
    assert.deepEqual(await c.waitClose(), { code: 1000, reason: '' });
  });
});

describe('ws client, examples/push', () => {
  e2e('welcome carries the id; text and binary messages are acknowledged as such', async (fx) => {
    const push = await fx.start('push');
    const [c, id] = await openPush(fx, push);

    const text = 'héllo ✓';
    await c.send(text);
    assert.deepEqual(await c.nextJSON(), { type: 'ack', binary: false, size: Buffer.byteLength(text), data: text });

    // Not valid UTF-8: had it arrived as a text message, laf would close with 1007.
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41]);
    await c.send(bytes, { binary: true });
    assert.deepEqual(await c.nextJSON(), { type: 'ack', binary: true, size: bytes.length, data: '' });

    // A text message after a binary one is text again.
    await c.send('{"a":1}');
    assert.deepEqual(await c.nextJSON(), { type: 'ack', binary: false, size: 7, data: '{"a":1}' });

    assert.deepEqual(await push.json('/events?id=' + id), [
      CONNECTION,
      { method: 'WebSocket:message', data: text },
      { method: 'WebSocket:message', binary: true },
      { method: 'WebSocket:message', data: '{"a":1}' },
    ]);
  });

  e2e('POST /push reaches exactly the target socket; an unknown id is 404', async (fx) => {
    const push = await fx.start('push');
    const [alice, aliceID] = await openPush(fx, push);
    const [bob, bobID] = await openPush(fx, push);
    assert.notEqual(aliceID, bobID);

    const post = (id, body) => push.fetch('/push?id=' + encodeURIComponent(id), { method: 'POST', body });

    let res = await post(aliceID, 'only for alice ✓');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'queued\n');
    assert.deepEqual(await alice.next(), { data: Buffer.from('only for alice ✓'), isBinary: false });

    // The push was queued before this message: had it gone to bob too, it
    // would come before bob's ack.
    await bob.send('ping');
    assert.deepEqual(await bob.nextJSON(), { type: 'ack', binary: false, size: 4, data: 'ping' });

    res = await post(bobID, 'only for bob');
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(await bob.nextText(), 'only for bob');
    await alice.send('pong');
    assert.deepEqual(await alice.nextJSON(), { type: 'ack', binary: false, size: 4, data: 'pong' });

    res = await post('no-such-socket', 'x');
    assert.equal(res.status, 404);
    assert.match(await res.text(), /no socket with that id/);

    // Once alice has closed, her id is gone from the registry.
    alice.ws.close(1000, 'done');
    await eventsUntilClose(push, aliceID);
    res = await post(aliceID, 'too late');
    assert.equal(res.status, 404);
    await res.text();
    assert.ok(bob.isOpen);
    assert.equal(bob.messages.length, 0, 'bob got nothing else');
  });

  e2e('a client close 4000 "bye" reaches the close event with that code and reason', async (fx) => {
    const push = await fx.start('push');
    const [c, id] = await openPush(fx, push);
    c.ws.close(4000, 'bye');
    // The server answers the close handshake with the same code.
    assert.deepEqual(await c.waitClose(), { code: 4000, reason: 'bye' });
    assert.deepEqual(await eventsUntilClose(push, id), [
      CONNECTION,
      { method: 'WebSocket:close', code: 4000, reason: 'bye', cause: 'peer' },
    ]);
  });

  e2e('a client killed without a close frame gives close 1006, cause abnormal', async (fx) => {
    const push = await fx.start('push');
    const [c, id] = await openPush(fx, push);
    await c.send('last words');
    assert.equal((await c.nextJSON()).data, 'last words');
    c.ws.terminate(); // destroys the TCP socket: no close frame
    const evs = await eventsUntilClose(push, id);
    assert.equal(evs.length, 4, JSON.stringify(evs));
    assert.deepEqual(evs.slice(0, 2), [CONNECTION, { method: 'WebSocket:message', data: 'last words' }]);
    // The read failed: an error event (with the network error), then the close.
    assert.equal(evs[2].method, 'WebSocket:error');
    assert.match(evs[2].err, /EOF|reset|closed/i);
    assert.deepEqual(evs[3], { method: 'WebSocket:close', code: 1006, cause: 'abnormal' });
  });

  e2e('a message over the read limit is answered with close 1009', async (fx) => {
    const push = await fx.start('push', ['-read-limit', '1024']);
    const [c, id] = await openPush(fx, push);

    // Exactly the limit is fine.
    await c.send('a'.repeat(1024));
    const ack = await c.nextJSON();
    assert.equal(ack.size, 1024);

    await c.send('b'.repeat(2000));
    const closed = await c.waitClose();
    assert.equal(closed.code, 1009, `close ${closed.code} ${closed.reason}`);

    const evs = await eventsUntilClose(push, id);
    assert.equal(evs.length, 4, JSON.stringify(evs));
    assert.equal(evs[1].method, 'WebSocket:message');
    assert.equal(evs[1].data.length, 1024);
    assert.equal(evs[2].method, 'WebSocket:error');
    assert.match(evs[2].err, /over the read limit/);
    assert.deepEqual(evs[3], { method: 'WebSocket:close', code: 1009, reason: 'message too big', cause: 'read limit' });
  });

  e2e('keepalive: ws answers pings, so the connection outlives the pong timeout', async (fx) => {
    const push = await fx.start('push', ['-ping', '200ms', '-pong', '2s']);
    const [c, id] = await openPush(fx, push);
    // Pings come at least 200 ms apart: 12 take at least 2.2 s, longer than
    // the 2 s pong timeout, so a missing pong would have closed the socket
    // by the 12th.
    await c.waitPings(12);
    assert.ok(c.isOpen, 'still open after 12 pings');
    await c.send('still here');
    assert.deepEqual(await c.nextJSON(), { type: 'ack', binary: false, size: 10, data: 'still here' });
    assert.deepEqual(await push.json('/events?id=' + id), [CONNECTION, { method: 'WebSocket:message', data: 'still here' }]);
  });

  e2e('keepalive: a client that does not answer pings is dropped with cause "ping timeout"', async (fx) => {
    const push = await fx.start('push', ['-ping', '200ms', '-pong', '1s']);
    const t0 = performance.now(); // before the server accepts: its first ping comes 200 ms after
    const [c, id] = await openPush(fx, push, { autoPong: false });
    const closed = await c.waitClose();
    const elapsed = performance.now() - t0;
    // laf drops a peer that does not answer: no close frame.
    assert.equal(closed.code, 1006);
    assert.ok(c.pings >= 1, 'pinged');
    assert.ok(elapsed >= 1000, `closed ${elapsed} ms after connecting, before the pong timeout`);
    assert.deepEqual(await eventsUntilClose(push, id), [
      CONNECTION,
      { method: 'WebSocket:close', code: 1006, reason: 'ping timeout', cause: 'ping timeout' },
    ]);
  });

  e2e('origin: a cross-origin Origin header is refused with 403; same-origin and none are accepted', async (fx) => {
    const push = await fx.start('push');
    await assert.rejects(Client.open(push.wsURL, { origin: 'http://evil.example' }), { status: 403 });
    // Same host, other port: another origin.
    await assert.rejects(Client.open(push.wsURL, { origin: `http://127.0.0.1:${push.port + 1}` }), { status: 403 });
    const [same] = await openPush(fx, push, { origin: push.url });
    const [none] = await openPush(fx, push);
    assert.ok(same.isOpen && none.isOpen);
    // A refusal is counted just after the 403 is written.
    const stats = await waitFor(async () => {
      const st = await push.json('/stats');
      return st.refused >= 2 && st;
    }, 'GET /stats to count 2 refusals');
    assert.equal(stats.refused, 2);
    assert.equal(stats.accepted, 2);
    assert.equal(stats.live, 2);

    const allowing = await fx.start('push', ['-origins', 'evil.example']);
    const [allowed] = await openPush(fx, allowing, { origin: 'http://evil.example' });
    assert.ok(allowed.isOpen);
    await assert.rejects(Client.open(allowing.wsURL, { origin: 'http://evil.example.org' }), { status: 403 });
  });

  e2e('SIGTERM: every socket is closed with 1001 "going away" and the server exits 0', async (fx) => {
    const push = await fx.start('push');
    const [a] = await openPush(fx, push);
    const [b] = await openPush(fx, push);
    // Browsers keep a spare connection open with no request on it, which
    // http.Server.Shutdown waits up to 5 s for: the sockets must not.
    const spare = connect(push.port, '127.0.0.1');
    fx.defer(() => spare.destroy());
    await once(spare, 'connect');
    const exit = push.stop('SIGTERM');
    assert.deepEqual(await a.waitClose(), { code: 1001, reason: 'going away' });
    assert.deepEqual(await b.waitClose(), { code: 1001, reason: 'going away' });
    spare.destroy();
    assert.deepEqual(await exit, { code: 0, signal: null });
  });
});
