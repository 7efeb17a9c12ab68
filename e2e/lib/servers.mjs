// Builds laf's example servers once per test process, starts them on free
// loopback ports and stops them again, keeping their stderr for debugging.
//
//	const bin = await buildExamples();
//	const srv = await startExample('push', ['-read-limit', '1024']);
//	srv.url, srv.wsURL, srv.port, srv.logs()
//	await srv.stop();

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The Go module whose examples are built: this repository, or the checkout
// named by LAF_E2E_REPO (to run the suite against another tree).
export const repoRoot = resolve(process.env.LAF_E2E_REPO || join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
export const EXAMPLES = ['hello', 'push', 'chat', 'notify'];
// Examples that are Go modules of their own.
const OWN_MODULE = ['chat'];

// Every wait in the suite gives up after this long. It is generous, for slow,
// shared CI machines; a passing run never waits for it.
export const TIMEOUT = 20_000;

// Binaries, server logs, browser profiles and screenshots go here. It is
// removed at exit unless a test failed or LAF_E2E_KEEP is set.
export const workDir = mkdtempSync(join(tmpdir(), 'laf-e2e-'));
let keepWorkDir = !!process.env.LAF_E2E_KEEP;
const live = new Set();

// Whatever happens to the test process, no example outlives it.
process.on('exit', () => {
  for (const srv of live) {
    try { srv.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (!keepWorkDir) rmSync(workDir, { recursive: true, force: true });
});
// A signal would end the process without 'exit': turn it into an exit.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    keepWorkDir = true;
    process.exit(128 + constants.signals[sig]);
  });
}

/** A fresh folder under this process's work folder. */
export function tempDir(prefix) {
  return mkdtempSync(join(workDir, prefix + '-'));
}

let built;

/**
 * Builds the examples with `go build -race` into a temporary folder, once
 * per process, and resolves to { hello, push, chat } binary paths. The race
 * detector makes a data race in laf under real clients fail the test that
 * stops the server (see Server.stop).
 *
 * node --test runs each test file in its own process, in parallel: a lock
 * makes them build one after the other, so that only the first compiles
 * and the others find everything in Go's build cache.
 */
export function buildExamples() {
  built ??= withBuildLock(async () => {
    const out = join(workDir, 'bin');
    // examples/chat is a module of its own (it serves Prometheus metrics);
    // the others are in laf's.
    const builds = [
      { cwd: repoRoot, pkgs: EXAMPLES.filter((n) => !OWN_MODULE.includes(n)).map((n) => './examples/' + n) },
      ...OWN_MODULE.map((n) => ({ cwd: join(repoRoot, 'examples', n), pkgs: ['.'], name: n })),
    ];
    for (const b of builds) {
      const args = ['build', '-race', '-o', b.name ? join(out, b.name) : out + '/', ...b.pkgs];
      const { code, output } = await run('go', args, { cwd: b.cwd });
      if (code !== 0) throw new Error(`go ${args.join(' ')} in ${b.cwd} failed (exit ${code}):\n${output}`);
    }
    return Object.fromEntries(EXAMPLES.map((n) => [n, join(out, n)]));
  });
  return built;
}

// withBuildLock runs fn holding a lock folder shared by the test processes
// of this checkout. A lock whose holder has died is taken over.
async function withBuildLock(fn) {
  const key = createHash('sha256').update(repoRoot).digest('hex').slice(0, 12);
  const lock = join(tmpdir(), `laf-e2e-build-${key}.lock`);
  const deadline = Date.now() + 15 * 60_000; // a cold -race build takes about a minute on 2 cores
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try { holder = Number(readFileSync(join(lock, 'pid'), 'utf8')); } catch { /* being written or removed */ }
    if (holder && !isAlive(holder)) rmSync(lock, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`gave up waiting for the build lock ${lock}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b) => { output += b; });
    child.stderr.on('data', (b) => { output += b; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Resolves to a port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls cond every interval ms until it returns a truthy value, which it
 * resolves to. what describes the wait in the timeout error (a string, or a
 * function called then).
 */
export async function waitFor(cond, what, { timeout = TIMEOUT, interval = 25 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const desc = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeout} ms waiting for ${desc}` + (last ? `: ${last.message}` : ''));
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Rejects with a clear message if p has not settled within ms. */
export function within(p, what, ms = TIMEOUT) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A running example server. */
export class Server {
  constructor(name, args, port, child, logPath) {
    this.name = name;
    this.args = args;
    this.port = port;
    this.child = child;
    this.logPath = logPath;
    this.url = `http://127.0.0.1:${port}`;
    this.wsURL = `ws://127.0.0.1:${port}/__websocket__`;
    this.stderr = '';
    this.exited = false;
    this.killed = false; // by stop, after its timeout
    // 'close' comes after the process has exited and its output is read.
    this.exit = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exited = true;
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  /** The server's output so far, labelled, for failure reports. */
  logs() {
    return `--- ${this.name} ${this.args.join(' ')} (pid ${this.child.pid}, log ${this.logPath}) ---\n${this.stderr || '(no output)\n'}`;
  }

  /** fetch() on this server; path starts with "/". */
  fetch(path, init) {
    return fetch(this.url + path, { ...init, signal: AbortSignal.timeout(TIMEOUT) });
  }

  /** GET path and decode the JSON body, failing on a non-2xx status. */
  async json(path) {
    const res = await this.fetch(path);
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}: ${await res.text()}`);
    return res.json();
  }

  /**
   * Sends signal and waits for the process to exit, killing it if it has
   * not within the timeout. Resolves to { code, signal } (after a kill, the
   * signal is SIGKILL). Throws if the race detector reported a data race.
   * Only the first call signals; later ones wait for the same exit.
   */
  stop(signal = 'SIGTERM', { timeout = TIMEOUT } = {}) {
    this.stopping ??= (async () => {
      if (!this.exited) this.child.kill(signal);
      const timer = setTimeout(() => {
        this.killed = true;
        this.child.kill('SIGKILL');
      }, timeout);
      const result = await this.exit;
      clearTimeout(timer);
      return result;
    })();
    return this.stopping.then((result) => {
      this.checkRaces();
      return result;
    });
  }

  /** Throws if the race detector has reported a data race. */
  checkRaces() {
    if (this.stderr.includes('WARNING: DATA RACE')) {
      throw new Error(`data race in ${this.name}:\n${this.logs()}`);
    }
  }
}

/**
 * Builds the examples if need be, starts example name with args on a free
 * loopback port (-addr 127.0.0.1:PORT) and resolves once it answers HTTP.
 * A port taken between freePort and the server's listen is retried.
 */
export async function startExample(name, args = [], atPort = 0) {
  const bin = (await buildExamples())[name];
  if (!bin) throw new Error(`no example ${name}`);
  for (let attempt = 1; ; attempt++) {
    const port = atPort || await freePort();
    const srv = spawnServer(name, bin, args, port);
    try {
      await waitFor(async () => {
        if (srv.exited) throw new Error('exited');
        const res = await fetch(srv.url + '/', { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return true;
      }, `${name} to answer HTTP on ${srv.url}`);
      return srv;
    } catch (err) {
      await srv.stop('SIGKILL');
      if (attempt < 3 && !atPort && srv.stderr.includes('address already in use')) continue;
      throw new Error(`${err.message}\n${srv.logs()}`);
    }
  }
}

function spawnServer(name, bin, args, port) {
  const fullArgs = ['-addr', `127.0.0.1:${port}`, ...args];
  const child = spawn(bin, fullArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GORACE: 'atexit_sleep_ms=50' } });
  const logPath = join(workDir, `${name}-${port}.log`);
  const log = createWriteStream(logPath);
  const srv = new Server(name, fullArgs, port, child, logPath);
  live.add(srv);
  const keep = (b) => { srv.stderr += b; log.write(b); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('close', () => log.end());
  return srv;
}

/**
 * Tracks what one test starts. Fixture.run(t, fn) calls fn(fixture), runs
 * the cleanups fn registered, then stops every server it started with
 * SIGTERM: a server must then exit 0 within 20 s, with no data race
 * reported. If anything failed, the error is extended with what the servers
 * and pages logged.
 */
export class Fixture {
  constructor() {
    this.servers = [];
    this.cleanups = [];
    this.reports = [];
  }

  async start(name, args) {
    const srv = await startExample(name, args);
    this.servers.push(srv);
    return srv;
  }

  /**
   * Stops srv with SIGTERM (it must exit 0) and starts the same example
   * again on the same port, as a deploy restarts a server: what it kept in
   * memory is gone.
   */
  async restart(srv, args) {
    const exit = await srv.stop('SIGTERM');
    if (exit.code !== 0) throw new Error(`${srv.name} exited ${JSON.stringify(exit)} on SIGTERM\n${srv.logs()}`);
    const again = await startExample(srv.name, args, srv.port);
    this.servers.push(again);
    return again;
  }

  /** Registers fn to run at the end of the test, before the servers stop. */
  defer(fn) {
    this.cleanups.push(fn);
  }

  /** Registers fn, which returns (or resolves to) text to show if the test fails. */
  onFailure(fn) {
    this.reports.push(fn);
  }

  async failureReports() {
    return Promise.all(this.reports.map(async (fn) => {
      try { return await fn(); } catch (err) { return `(report failed: ${err.message})`; }
    }));
  }

  static async run(t, fn) {
    const fx = new Fixture();
    let failure;
    try {
      await fn(fx);
    } catch (err) {
      failure = err;
    }
    // Pages are closed by the cleanups: take their reports first.
    let reports = failure ? await fx.failureReports() : null;
    for (const fn of fx.cleanups.reverse()) {
      try { await fn(); } catch (err) { failure ??= err; }
    }
    // Graceful shutdown is part of every example's behaviour.
    const stopped = await Promise.allSettled(fx.servers.map(async (srv) => {
      const { code, signal } = await srv.stop('SIGTERM');
      if (srv.killed) throw new Error(`${srv.name} did not exit within ${TIMEOUT} ms of SIGTERM`);
      if (code !== 0) throw new Error(`${srv.name} exited with ${code ?? signal} after SIGTERM`);
    }));
    for (const r of stopped) {
      if (r.status === 'rejected') failure ??= r.reason;
    }
    if (failure) {
      reports ??= await fx.failureReports();
      reports.push(...fx.servers.map((s) => s.logs()));
      keepWorkDir = true;
      const logs = `What the servers and pages logged (kept in ${workDir}):\n` + reports.join('\n');
      if (failure instanceof Error) {
        failure.message += '\n\n' + logs;
        // Error.stack was computed with the old message.
        if (typeof failure.stack === 'string') failure.stack = failure.message + '\n' + failure.stack.split('\n').filter((l) => /^\s+at /.test(l)).join('\n');
      } else {
        t.diagnostic(logs);
      }
      throw failure;
    }
  }
}
