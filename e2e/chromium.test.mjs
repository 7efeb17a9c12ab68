// laf's examples in a real headless Chromium, on the pages the examples
// serve.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { launch, openPage } from './lib/browser.mjs';
import { Fixture, buildExamples, tempDir, waitFor } from './lib/servers.mjs';
import { Client } from './lib/wsclient.mjs';

const OPTS = { timeout: 120_000 }; // a backstop: every wait inside gives up after 20 s
// Poll page conditions on a timer: requestAnimationFrame, Playwright's
// default, is throttled in pages that are not in front.
const POLL = { polling: 50 };

await buildExamples();

/**
 * A test with a Fixture and its own browser, closed at the end before the
 * servers stop (a browser keeps spare connections open, which a server's
 * graceful shutdown would wait 5 s for). It checks that no page went off
 * 127.0.0.1.
 */
function e2e(name, fn) {
  return test(name, OPTS, (t) => Fixture.run(t, async (fx) => {
    const browser = await launch();
    fx.defer(() => browser.close());
    await fn(fx, browser, t);
    assert.deepEqual(browser.offLoopback, [], 'requests off 127.0.0.1');
  }));
}

describe('Chromium, examples/hello', () => {
  e2e("the seed's browser client connects, is greeted and acknowledged, and sees the server close", async (fx, browser) => {
    const hello = await fx.start('hello');
    const page = await openPage(fx, browser);
    await page.goto(hello.url + '/');

    await page.waitForFunction(() => window.logged.length >= 5, null, POLL);
    assert.deepEqual(await page.evaluate(() => window.logged), [
      'connected',
      'Received a new message...',
      'hi connection succeed',
      'Received a new message...',
      'I have received your message', // the ack of the page's "hi"
    ]);
    await waitFor(() => / message data=hi\n/.test(hello.stderr), 'hello to log the message "hi"');

    // The page's own onclose logs only "closed"; listen for the details too.
    // wss is the page's top-level const.
    await page.evaluate(() => {
      window.closeEvent = null;
      wss.addEventListener('close', (e) => { window.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean }; });
    });
    assert.ok(!(await page.evaluate(() => window.logged.includes('closed'))));

    // Graceful shutdown closes every socket with 1001.
    const exit = hello.stop('SIGTERM');
    await page.waitForFunction(() => window.logged.includes('closed'), null, POLL);
    assert.equal(await page.evaluate(() => window.logged.at(-1)), 'closed');
    assert.deepEqual(await page.evaluate(() => window.closeEvent), { code: 1001, reason: 'going away', wasClean: true });
    // hello exits once its HTTP connections are gone too: close the browser.
    await browser.close();
    assert.deepEqual(await exit, { code: 0, signal: null });
  });
});

/** Waits until the chat page's status is status. */
async function chatStatus(page, status) {
  await page.waitForFunction((s) => window.chat.status === s, status, POLL).catch(async (err) => {
    err.message += `\nstatus is ${JSON.stringify(await page.evaluate(() => window.chat.status))}`;
    throw err;
  });
}

/** Waits until the chat page has received n messages, and returns them. */
async function received(page, n) {
  await page.waitForFunction((n) => window.chat.received.length >= n, n, POLL).catch(async (err) => {
    err.message += `\nreceived ${JSON.stringify(await page.evaluate(() => window.chat.received))}`;
    throw err;
  });
  return page.evaluate(() => window.chat.received);
}

/** Types text into the chat page's input and clicks Send. */
async function say(page, text) {
  await page.locator('#input').fill(text);
  await page.locator('#send').click();
  assert.equal(await page.locator('#input').inputValue(), '', 'the form clears its input once sent');
}

describe('Chromium, examples/chat', () => {
  e2e('with -compress, Chromium and Node ws negotiate permessage-deflate, and a large room message, compressed once, arrives intact at both', async (fx, browser) => {
    const chat = await fx.start('chat', ['-compress']);
    const alice = await openPage(fx, browser);
    await alice.goto(chat.url + '/?room=z&name=alice');
    await chatStatus(alice, 'connected as alice');
    assert.match(await alice.evaluate(() => window.chat.extensions), /^permessage-deflate/);

    const bob = await Client.open(chat.wsURL + '?room=z&name=bob'); // ws offers permessage-deflate by default
    fx.defer(() => bob.terminate());
    assert.match(bob.ws.extensions, /^permessage-deflate/);
    await received(alice, 2); // alice's join, then bob's
    assert.equal(JSON.parse((await bob.next()).data).type, 'join');

    const before = (await chat.json('/stats')).compressed;
    const long = Array.from({ length: 60 }, (_, i) => `{"n":${i},"text":"chat traffic is mostly JSON ✓"}`).join(',');
    await say(alice, long);
    const text = { type: 'text', from: 'alice', room: 'z', text: long };
    assert.deepEqual((await received(alice, 3))[2], text);
    assert.deepEqual(JSON.parse((await bob.next()).data), text);
    assert.equal((await chat.json('/stats')).compressed, before + 1, 'compressed once for both sockets');
  });


  e2e('two pages in one room see each other\'s text and JSON messages; another room sees none', async (fx, browser, t) => {
    const chat = await fx.start('chat');
    const alice = await openPage(fx, browser);
    await alice.goto(chat.url + '/?room=r1&name=alice');
    await chatStatus(alice, 'connected as alice');
    assert.deepEqual(await received(alice, 1), [{ type: 'join', from: 'alice', room: 'r1' }]);

    const bob = await openPage(fx, browser);
    await bob.goto(chat.url + '/?room=r1&name=bob');
    await chatStatus(bob, 'connected as bob');
    assert.deepEqual(await received(bob, 1), [{ type: 'join', from: 'bob', room: 'r1' }]);
    assert.deepEqual((await received(alice, 2))[1], { type: 'join', from: 'bob', room: 'r1' });

    const carol = await openPage(fx, browser);
    await carol.goto(chat.url + '/?room=r2&name=carol');
    await chatStatus(carol, 'connected as carol');

    await say(alice, 'hello bob ✓');
    const text = { type: 'text', from: 'alice', room: 'r1', text: 'hello bob ✓' };
    assert.deepEqual((await received(bob, 2))[1], text);
    assert.deepEqual((await received(alice, 3))[2], text);

    await say(bob, '{"emoji":"👋","n":1}');
    const json = { type: 'json', from: 'bob', room: 'r1', data: { emoji: '👋', n: 1 } };
    assert.deepEqual(await received(alice, 4), [
      { type: 'join', from: 'alice', room: 'r1' },
      { type: 'join', from: 'bob', room: 'r1' },
      text,
      json,
    ]);
    assert.deepEqual(await received(bob, 3), [{ type: 'join', from: 'bob', room: 'r1' }, text, json]);

    // carol, in r2, got none of it: the r1 messages were queued before her
    // own, which is the next thing she receives.
    await say(carol, 'anyone?');
    assert.deepEqual(await received(carol, 2), [
      { type: 'join', from: 'carol', room: 'r2' },
      { type: 'text', from: 'carol', room: 'r2', text: 'anyone?' },
    ]);

    // The page rendered what it received.
    assert.deepEqual(await alice.locator('#messages li').allTextContents(), [
      'alice joined r1',
      'bob joined r1',
      'alice: hello bob ✓',
      'bob sent {"emoji":"👋","n":1}',
    ]);
    assert.equal(await alice.locator('#room').textContent(), 'r1');
    assert.equal(await alice.locator('#status').textContent(), 'connected as alice');

    const shot = join(tempDir('chat-screenshot'), 'chat-alice.png');
    await alice.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot of the chat page: ${shot} (kept if a test fails, or with LAF_E2E_KEEP=1)`);

    // Closing bob's tab closes his socket: alice is told he left.
    await bob.close();
    assert.deepEqual((await received(alice, 5))[4], { type: 'leave', from: 'bob', room: 'r1' });
    // live goes down once the close event has returned, just after it sent the leave.
    await waitFor(async () => (await chat.json('/stats')).live === 2, 'GET /stats to show 2 live sockets');
    assert.equal((await chat.json('/stats')).accepted, 3);
  });

  e2e('a page from another origin is refused by default and accepted once -origins allows it', async (fx, browser) => {
    const target = await fx.start('chat'); // default: same origin only
    const other = await fx.start('chat'); // serves the page, from another origin
    const wrong = await fx.start('chat', ['-origins', `127.0.0.1:${target.port}`]); // allows a different port
    const allowing = await fx.start('chat', ['-origins', `127.0.0.1:${other.port}`]);

    const pageFor = async (srv) => {
      const page = await openPage(fx, browser);
      const ws = encodeURIComponent(srv.wsURL);
      await page.goto(`${other.url}/?room=o&name=eve&ws=${ws}`);
      return page;
    };

    // Refused: the handshake gets 403, which the page sees as a failed
    // WebSocket (error, then close 1006).
    for (const srv of [target, wrong]) {
      const page = await pageFor(srv);
      // Wait until the socket has settled either way, so that a wrongly
      // accepted socket fails here at once.
      await page.waitForFunction(() => !['connecting', 'error'].includes(window.chat.status), null, POLL);
      assert.equal(await page.evaluate(() => window.chat.status), 'closed 1006');
      assert.deepEqual(await page.evaluate(() => window.chat.received), []);
      // The refusal is counted just after the 403 is written.
      const stats = await waitFor(async () => {
        const st = await srv.json('/stats');
        return st.refused >= 1 && st;
      }, `${srv.args.join(' ')} to count the refusal`);
      assert.equal(stats.refused, 1, `${srv.args.join(' ')}: ${JSON.stringify(stats)}`);
      assert.equal(stats.accepted, 0);
    }

    // Allowed: the same page connects and chats.
    const page = await pageFor(allowing);
    await chatStatus(page, 'connected as eve');
    await say(page, 'hi from afar');
    assert.deepEqual(await received(page, 2), [
      { type: 'join', from: 'eve', room: 'o' },
      { type: 'text', from: 'eve', room: 'o', text: 'hi from afar' },
    ]);
    const stats = await allowing.json('/stats');
    assert.equal(stats.accepted, 1);
    assert.equal(stats.refused, 0);
    assert.equal((await other.json('/stats')).accepted, 0, 'the page did not use its own server');
  });
});

describe("Chromium, examples/notify: laf's browser client", () => {
  const until = (page, fn, arg) => page.waitForFunction(fn, arg, POLL);
  const post = async (url) => {
    const res = await fetch(url, { method: 'POST', body: url.includes('/notify') ? JSON.stringify({ n: Number(new URL(url).searchParams.get('n')) }) : '' });
    await res.arrayBuffer();
    return res.status;
  };

  e2e('a tab the server drops (1012) while notifications flow reconnects and gets every one exactly once, in order', async (fx, browser) => {
    const notify = await fx.start('notify');
    const page = await openPage(fx, browser);
    await page.goto(notify.url + '/?user=alice');
    await until(page, () => window.recoveries?.length === 1);

    const N = 60;
    const publisher = (async () => {
      for (let i = 0; i < N; i++) {
        assert.equal(await post(`${notify.url}/notify?user=alice&n=${i}`), 202);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await until(page, () => window.notifications.length >= 15);
    assert.equal(await post(`${notify.url}/disconnect?user=alice`), 202);
    await publisher;
    await until(page, (n) => window.notifications.length >= n, N);

    assert.deepEqual(await page.evaluate(() => window.notifications.map((x) => x.data.n)), [...Array(N).keys()]);
    const closes = await page.evaluate(() => window.closes);
    assert.deepEqual(closes, [{ code: 1012, reason: 'service restart', reconnecting: true }]);
    await until(page, () => window.recoveries.length === 2);
    const [first, second] = await page.evaluate(() => window.recoveries);
    assert.equal(first.recovered, false, 'a first visit recovers nothing');
    assert.equal(second.recovered, true, 'the reconnect recovered what it missed');
    assert.equal(await page.evaluate(() => window.snapshots), 1, 'a snapshot on the first visit only');
  });

  e2e('after the server restarts, the client is told it did not recover, and the snapshot arrives', async (fx, browser) => {
    const notify = await fx.start('notify');
    const page = await openPage(fx, browser);
    await page.goto(notify.url + '/?user=alice');
    await until(page, () => window.recoveries?.length === 1);
    for (let i = 0; i < 3; i++) assert.equal(await post(`${notify.url}/notify?user=alice&n=${i}`), 202);
    await until(page, () => window.notifications.length === 3);

    const again = await fx.restart(notify); // history is in memory: gone
    await until(page, () => window.recoveries.length === 2 && window.snapshots === 2);
    const last = await page.evaluate(() => window.recoveries.at(-1));
    assert.equal(last.recovered, false);
    assert.equal(last.room, 'user:alice');
    assert.equal((await page.evaluate(() => window.closes))[0].code, 1001, 'the restart closed the tab with 1001');

    // Notifications after the restart arrive, from the new history.
    assert.equal(await post(`${again.url}/notify?user=alice&n=3`), 202);
    await until(page, () => window.notifications.length === 4);
    const pos = await page.evaluate(() => window.notifications.map((x) => x.pos));
    assert.notEqual(pos[3].split(':')[0], pos[2].split(':')[0], 'a new epoch');
    assert.equal(pos[3].split(':')[1], '1');
  });
});
