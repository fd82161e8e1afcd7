#!/usr/bin/env node
// Load generator for any server that speaks jobqueue's HTTP contract (this service or the Node
// one), by base URL. Node 20, no npm dependencies: node:http with a keep-alive Agent.
//
// Phases (each can be switched off):
//   warm-up   W creates (unmeasured), then wait until the stats show them finished
//   creates   N POST /api/jobs at concurrency C: requests/s, latency percentiles, errors
//   e2e       GET /api/jobs/stats as a baseline before, then every --poll-ms from the first
//             create on until the completed+failed delta reaches the jobs created: jobs/s
//   batch     M POST /api/jobs/batch of B jobs at concurrency C: jobs accepted/s, then
//             processed jobs/s until the stats show them finished
//   idle      K sequential creates, each followed by back-to-back GET /api/jobs/:id until
//             it is completed: create->completed and POST-alone percentiles
//   server    with --pid: peak RSS (VmHWM) and idle CPU of those processes and their
//             descendants, from /proc
// Its own CPU (process.cpuUsage) is reported per request beside the figures.
//
// Exit status: 0 clean; 1 timed out (jobs unfinished) or the server stopped answering (stats
// unanswered for 10 s, or 3 idle samples in a row without a connection); 2 bad usage, refused
// URL or server unreachable at start; 3 finished but not clean (request errors, failed jobs,
// row count mismatch, idle sample failures). Run with --help for the options.

import { execFileSync } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const EXIT_OK = 0;
const EXIT_TIMEOUT = 1;
const EXIT_USAGE = 2;
const EXIT_ERRORS = 3;
const IDLE_SAMPLE_LIMIT_MS = 30_000; // longest wait for one idle-phase job
const UNREACHABLE_MS = 10_000; // stats unanswered this long: the server is gone, stop waiting
const MAX_ERROR_SAMPLES = 3; // bodies kept per error kind
const MAX_BODY_CHARS = 300;
const FREE_SOCKET_TIMEOUT_MS = 4_000; // below uvicorn's 5 s keep-alive: never reuse a closing socket

const USAGE = `usage: node bench/loadgen.mjs --url http://127.0.0.1:3000 [options]

  --url URL               base URL; the host must be loopback (127.0.0.0/8, ::1, or a name
                          that resolves only to those)
  --jobs N                single creates in the creates/e2e phase (default 5000; 0 skips it)
  --concurrency C         requests in flight (default 50)
  --type T                job type (default noop)
  --payload JSON          job payload (default {})
  --warmup W              unmeasured creates first, waited for until finished (default 0)
  --batches M             POST /api/jobs/batch requests (default 0: no batch phase)
  --batch-size B          jobs per batch (default 1000)
  --idle-samples K        idle create->completed samples (default 100; 0 skips)
  --timeout S             bound of each phase in seconds (default 300)
  --request-timeout S     bound of one request in seconds (default 30)
  --poll-ms MS            stats poll interval (default 50)
  --pid PID[,PID...]      server processes (repeatable); descendants are included
  --idle-cpu-seconds S    server idle CPU window after the run (default 5; 0 skips)
  --api-key KEY           send Authorization: Bearer KEY
  --json FILE             write every number plus metadata to FILE
  --quiet                 no progress lines on stderr`;

// ---------------------------------------------------------------------------------- options

class UsageError extends Error {}

function intOption(values, name, fallback, min) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}

function numOption(values, name, fallback, min) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got ${raw}`);
  return n;
}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      jobs: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      type: { type: 'string' },
      payload: { type: 'string' },
      warmup: { type: 'string' },
      batches: { type: 'string' },
      'batch-size': { type: 'string' },
      'idle-samples': { type: 'string' },
      timeout: { type: 'string' },
      'request-timeout': { type: 'string' },
      'poll-ms': { type: 'string' },
      pid: { type: 'string', multiple: true },
      'idle-cpu-seconds': { type: 'string' },
      'api-key': { type: 'string' },
      json: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(EXIT_OK);
  }
  if (!values.url) throw new UsageError('--url is required');
  let payload = {};
  if (values.payload !== undefined) {
    try {
      payload = JSON.parse(values.payload);
    } catch (err) {
      throw new UsageError(`--payload is not JSON: ${err.message}`);
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new UsageError('--payload must be a JSON object');
    }
  }
  const pids = [];
  for (const item of values.pid ?? []) {
    for (const part of item.split(',')) {
      if (part === '') continue;
      const pid = Number(part);
      if (!Number.isInteger(pid) || pid < 1) throw new UsageError(`--pid: not a process id: ${part}`);
      pids.push(pid);
    }
  }
  const type = values.type ?? 'noop';
  if (type.length < 1 || type.length > 100) throw new UsageError('--type must be 1..100 characters');
  const batchSize = intOption(values, 'batch-size', 1000, 1);
  if (batchSize > 1000) throw new UsageError('--batch-size is at most 1000 (the contract)');
  return {
    url: values.url,
    jobs: intOption(values, 'jobs', 5000, 0),
    concurrency: intOption(values, 'concurrency', 50, 1),
    type,
    payload,
    warmup: intOption(values, 'warmup', 0, 0),
    batches: intOption(values, 'batches', 0, 0),
    batchSize,
    idleSamples: intOption(values, 'idle-samples', 100, 0),
    timeoutMs: numOption(values, 'timeout', 300, 1) * 1000,
    requestTimeoutMs: numOption(values, 'request-timeout', 30, 0.1) * 1000,
    pollMs: numOption(values, 'poll-ms', 50, 1),
    pids,
    idleCpuSeconds: numOption(values, 'idle-cpu-seconds', 5, 0),
    apiKey: values['api-key'],
    jsonPath: values.json,
    quiet: Boolean(values.quiet),
  };
}

// ------------------------------------------------------------------------- loopback target

function isLoopbackAddress(address) {
  if (net.isIPv4(address)) return address.split('.')[0] === '127';
  if (net.isIPv6(address)) {
    const normal = new URL(`http://[${address}]/`).hostname; // "[::1]", "[::ffff:7f00:1]"
    if (normal === '[::1]') return true;
    const mapped = /^\[::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}\]$/.exec(normal);
    return mapped !== null && parseInt(mapped[1], 16) >> 8 === 127;
  }
  return false;
}

// The address to connect to: the URL's host if it is a loopback literal, or the first address
// of a name that resolves to loopback addresses only. Anything else is refused.
async function resolveTarget(rawUrl) {
  let url;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`not a URL: ${rawUrl}`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`only http:// URLs are supported, got ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let address = host;
  if (!net.isIP(host)) {
    let found;
    try {
      found = await dns.lookup(host, { all: true, verbatim: true });
    } catch (err) {
      throw new UsageError(`cannot resolve ${host}: ${err.code ?? err.message}`);
    }
    const remote = found.filter((entry) => !isLoopbackAddress(entry.address));
    if (found.length === 0 || remote.length > 0) {
      throw new UsageError(`refused: ${host} resolves to non-loopback ${remote.map((e) => e.address).join(', ')}`);
    }
    address = found[0].address;
  }
  if (!isLoopbackAddress(address)) {
    throw new UsageError(`refused: ${host} is not a loopback address; load goes only to 127.0.0.0/8 or ::1`);
  }
  return {
    url: url.href.replace(/\/$/, ''),
    address,
    port: Number(url.port || 80),
    hostHeader: url.host,
    basePath: url.pathname.replace(/\/+$/, ''),
  };
}

// ------------------------------------------------------------------------------------ HTTP

class Client {
  constructor(target, { sockets, apiKey, requestTimeoutMs }) {
    this.target = target;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, timeout: FREE_SOCKET_TIMEOUT_MS });
    this.requestTimeoutMs = requestTimeoutMs;
    this.baseHeaders = { host: target.hostHeader, accept: 'application/json' };
    if (apiKey) this.baseHeaders.authorization = `Bearer ${apiKey}`;
    this.requests = 0;
  }

  // Resolves (never rejects) to {status, body: Buffer} or {status: 0, error: code}.
  send(method, path, body) {
    this.requests += 1;
    const headers = body === undefined
      ? this.baseHeaders
      : { ...this.baseHeaders, 'content-type': 'application/json', 'content-length': body.length };
    return new Promise((resolve) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.target.address,
          port: this.target.port,
          method,
          path: this.target.basePath + path,
          headers,
          timeout: this.requestTimeoutMs,
        },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => {
            resolve({ status: res.statusCode, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) });
          });
          res.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
        },
      );
      req.on('timeout', () => {
        const err = new Error('request timed out');
        err.code = 'REQUEST_TIMEOUT';
        req.destroy(err);
      });
      req.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
      req.end(body);
    });
  }

  close() {
    this.agent.destroy();
  }
}

function parseJson(response) {
  try {
    return JSON.parse(response.body.toString('utf8'));
  } catch {
    return undefined;
  }
}

// Counts failed requests by kind ("HTTP 503", "ECONNRESET", ...) with a few sample bodies.
class ErrorLog {
  constructor(origin) {
    this.origin = origin;
    this.kinds = {};
    this.total = 0;
  }

  add(response, what) {
    const kind = response.status === 0 ? response.error : `HTTP ${response.status}`;
    const entry = (this.kinds[kind] ??= { count: 0, samples: [] });
    entry.count += 1;
    this.total += 1;
    if (entry.samples.length < MAX_ERROR_SAMPLES) {
      entry.samples.push({
        what,
        at_s: round((performance.now() - this.origin) / 1000, 3),
        body: response.body ? response.body.toString('utf8').slice(0, MAX_BODY_CHARS) : null,
      });
    }
  }
}

// ---------------------------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function round(value, digits = 2) {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

// Nearest-rank percentiles (ms) of the first n values of a Float64Array.
function latencySummary(values, n) {
  if (n === 0) return { count: 0, p50_ms: null, p90_ms: null, p99_ms: null, max_ms: null, mean_ms: null };
  const sorted = values.slice(0, n).sort();
  const at = (p) => sorted[Math.max(0, Math.ceil((p / 100) * n) - 1)];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    count: n,
    p50_ms: round(at(50), 3),
    p90_ms: round(at(90), 3),
    p99_ms: round(at(99), 3),
    max_ms: round(sorted[n - 1], 3),
    mean_ms: round(sum / n, 3),
  };
}

// Runs fn(i) for i in [0, count) with at most `concurrency` in flight; stops issuing new
// calls once shouldStop() is true.
async function runPool(count, concurrency, fn, shouldStop) {
  let next = 0;
  const lane = async () => {
    while (next < count && !shouldStop()) {
      const i = next;
      next += 1;
      await fn(i);
    }
  };
  const lanes = [];
  for (let w = 0; w < Math.min(count, concurrency); w++) lanes.push(lane());
  await Promise.all(lanes);
  return next;
}

function cpuMicros() {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

// Own CPU time and requests sent over a phase.
class CpuMeter {
  constructor(clients) {
    this.clients = clients;
    this.cpu0 = cpuMicros();
    this.req0 = this.requests();
    this.t0 = performance.now();
  }

  requests() {
    return this.clients.reduce((sum, client) => sum + client.requests, 0);
  }

  read() {
    const cpuUs = cpuMicros() - this.cpu0;
    const requests = this.requests() - this.req0;
    const wallMs = performance.now() - this.t0;
    return {
      cpu_ms: round(cpuUs / 1000, 1),
      wall_ms: round(wallMs, 1),
      percent_of_one_core: wallMs > 0 ? round(cpuUs / 10 / wallMs, 1) : null,
      requests,
      cpu_us_per_request: requests ? round(cpuUs / requests, 1) : null,
    };
  }
}

// ---------------------------------------------------------------------------- /proc readers

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100, the value on every Linux this runs on
}

function readStat(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
    return {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      start: fields[19],
    };
  } catch {
    return null;
  }
}

function readStatus(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    const name = /^Name:\s+(.*)$/m.exec(text);
    return { name: name ? name[1] : '?', hwmKb: kb('VmHWM'), rssKb: kb('VmRSS') };
  } catch {
    return null;
  }
}

// The given pids and every live descendant of theirs.
function processTree(roots) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (stat === null) continue;
    if (!children.has(stat.ppid)) children.set(stat.ppid, []);
    children.get(stat.ppid).push(Number(entry));
  }
  const seen = new Set();
  const stack = roots.filter((pid) => fs.existsSync(`/proc/${pid}`));
  while (stack.length > 0) {
    const pid = stack.pop();
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const child of children.get(pid) ?? []) stack.push(child);
  }
  return [...seen];
}

// Keeps the highest VmHWM seen per process of the tree.
class ServerWatch {
  constructor(pids) {
    this.pids = pids;
    this.peaks = new Map(); // pid -> {name, hwmKb, rssKb}
  }

  sample() {
    if (this.pids.length === 0) return;
    for (const pid of processTree(this.pids)) {
      const status = readStatus(pid);
      if (status === null || status.hwmKb === null) continue;
      const prior = this.peaks.get(pid);
      if (!prior || status.hwmKb >= prior.hwmKb) this.peaks.set(pid, status);
    }
  }

  ticks() {
    const result = new Map();
    for (const pid of processTree(this.pids)) {
      const stat = readStat(pid);
      if (stat !== null) result.set(pid, stat);
    }
    return result;
  }

  // CPU of the tree over `seconds` of idle, as % of one core.
  async idleCpu(seconds) {
    const before = this.ticks();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const after = this.ticks();
    const elapsedS = (performance.now() - t0) / 1000;
    let ticks = 0;
    for (const [pid, stat] of after) {
      const prior = before.get(pid);
      ticks += prior && prior.start === stat.start ? stat.ticks - prior.ticks : stat.ticks;
    }
    return {
      seconds: round(elapsedS, 2),
      cpu_ticks: ticks,
      clock_ticks_per_s: clockTicks,
      percent_of_one_core: round((100 * ticks) / clockTicks / elapsedS, 2),
      processes: after.size,
    };
  }

  report() {
    const processes = [...this.peaks.entries()].map(([pid, s]) => ({
      pid,
      name: s.name,
      peak_rss_mib: round(s.hwmKb / 1024, 1),
      rss_mib: round(s.rssKb / 1024, 1),
    }));
    const total = processes.reduce((sum, p) => sum + p.peak_rss_mib, 0);
    return { pids: this.pids, peak_rss_mib: processes.length ? round(total, 1) : null, processes };
  }
}

// ----------------------------------------------------------------------------------- phases

class Run {
  constructor(options, target) {
    this.o = options;
    this.target = target;
    this.origin = performance.now();
    this.errors = new ErrorLog(this.origin);
    const common = { apiKey: options.apiKey, requestTimeoutMs: options.requestTimeoutMs };
    this.load = new Client(target, { ...common, sockets: options.concurrency });
    this.poller = new Client(target, { ...common, sockets: 1 });
    this.single = new Client(target, { ...common, sockets: 1 });
    this.createBody = Buffer.from(JSON.stringify({ type: options.type, payload: options.payload }));
    this.watch = new ServerWatch(options.pids);
    this.timedOut = false;
    this.lost = null; // why the server is taken for gone, once it is
    this.lastStatsOk = performance.now();
    this.lastStatsError = null;
    this.lastProgress = performance.now();
  }

  progress(message, force = false) {
    if (this.o.quiet) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 2000) return;
    this.lastProgress = now;
    process.stderr.write(`[loadgen ${((now - this.origin) / 1000).toFixed(1)}s] ${message}\n`);
  }

  async stats() {
    const response = await this.poller.send('GET', '/api/jobs/stats');
    const body = response.status === 200 ? parseJson(response) : undefined;
    if (!body || typeof body !== 'object') {
      this.errors.add(response, 'GET /api/jobs/stats');
      this.lastStatsError = response.status === 0 ? response.error : `HTTP ${response.status}`;
      return null;
    }
    this.lastStatsOk = performance.now();
    return body;
  }

  async baselineStats() {
    for (let attempt = 0; attempt < 5; attempt++) {
      const stats = await this.stats();
      if (stats) return stats;
      await sleep(200);
    }
    throw new UsageError('GET /api/jobs/stats does not answer 200');
  }

  // Polls the stats every pollMs until completed+failed gained `target()` (a function: the
  // target is known only once the creates are done) or the deadline passes.
  async waitFinished(base, t0, deadline, target, createsDone, label) {
    let polls = 0;
    let last = null;
    let tick = performance.now();
    for (;;) {
      const stats = await this.stats();
      const now = performance.now();
      polls += 1;
      if (stats) {
        last = stats;
        const finished = delta(stats, base, 'completed') + delta(stats, base, 'failed');
        if (createsDone() && finished >= target()) {
          return { done: true, at: now, polls, stats: last };
        }
        this.progress(`${label}: ${finished} finished, pending ${stats.pending}, processing ${stats.processing}`);
      }
      if (now > deadline) return { done: false, at: now, polls, stats: last };
      if (now - this.lastStatsOk > UNREACHABLE_MS) {
        this.lost = `GET /api/jobs/stats unanswered for ${UNREACHABLE_MS / 1000} s (${this.lastStatsError})`;
        return { done: false, at: now, polls, stats: last };
      }
      tick += this.o.pollMs;
      const wait = tick - performance.now();
      if (wait > 0) await sleep(wait);
      else tick = performance.now();
    }
  }

  async warmup() {
    const n = this.o.warmup;
    const base = await this.baselineStats();
    const t0 = performance.now();
    const deadline = t0 + this.o.timeoutMs;
    let ok = 0;
    const errorsBefore = this.errors.total;
    await runPool(n, this.o.concurrency, async () => {
      const response = await this.load.send('POST', '/api/jobs', this.createBody);
      if (response.status === 201) ok += 1;
      else this.errors.add(response, 'warm-up POST /api/jobs');
    }, () => performance.now() > deadline);
    const wait = await this.waitFinished(base, t0, deadline, () => ok, () => true, 'warm-up');
    if (!wait.done) this.timedOut = true;
    return {
      jobs: n,
      created: ok,
      errors: this.errors.total - errorsBefore,
      finished: wait.done,
      seconds: round((wait.at - t0) / 1000, 2),
    };
  }

  async creates() {
    const n = this.o.jobs;
    const base = await this.baselineStats();
    const latencies = new Float64Array(n);
    let ok = 0;
    let sent = 0;
    let createsDone = false;
    const errors = new ErrorLog(this.origin);
    const meter = new CpuMeter([this.load, this.poller]);
    const t0 = performance.now();
    const deadline = t0 + this.o.timeoutMs;
    const finished = this.waitFinished(base, t0, deadline, () => ok, () => createsDone, 'creates/e2e');
    await runPool(n, this.o.concurrency, async () => {
      sent += 1;
      const start = performance.now();
      const response = await this.load.send('POST', '/api/jobs', this.createBody);
      if (response.status === 201) {
        latencies[ok] = performance.now() - start;
        ok += 1;
      } else {
        errors.add(response, 'POST /api/jobs');
        this.errors.add(response, 'POST /api/jobs');
      }
      this.progress(`creates: ${ok} of ${n} created`);
    }, () => performance.now() > deadline);
    const t1 = performance.now();
    const createCpu = meter.read();
    createsDone = true;
    const wait = await finished;
    const cpu = meter.read();
    if (!wait.done) this.timedOut = true;
    const stats = wait.stats;
    const createSeconds = (t1 - t0) / 1000;
    const e2eSeconds = (wait.at - t0) / 1000;
    return {
      creates: {
        jobs: n,
        sent,
        created: ok,
        errors: errors.total,
        errors_by_kind: errors.kinds,
        seconds: round(createSeconds, 3),
        requests_per_s: round(sent / createSeconds, 1),
        created_per_s: round(ok / createSeconds, 1),
        latency: latencySummary(latencies, ok),
        loadgen_cpu: createCpu,
      },
      e2e: {
        done: wait.done,
        jobs: ok,
        seconds: round(e2eSeconds, 3),
        jobs_per_s: wait.done ? round(ok / e2eSeconds, 1) : null,
        tail_after_creates_s: round((wait.at - t1) / 1000, 3),
        ...settled(stats, base, ok),
        stats_polls: wait.polls,
        poll_ms: this.o.pollMs,
        stats_before: base,
        stats_after: stats,
        loadgen_cpu: cpu,
      },
    };
  }

  async batch() {
    const { batches, batchSize } = this.o;
    const jobs = [];
    for (let i = 0; i < batchSize; i++) jobs.push({ type: this.o.type, payload: this.o.payload });
    const body = Buffer.from(JSON.stringify({ jobs }));
    const base = await this.baselineStats();
    const latencies = new Float64Array(batches);
    const errors = new ErrorLog(this.origin);
    let okRequests = 0;
    let accepted = 0;
    let allAccepted = false;
    const meter = new CpuMeter([this.load, this.poller]);
    const t0 = performance.now();
    const deadline = t0 + this.o.timeoutMs;
    const finished = this.waitFinished(base, t0, deadline, () => accepted, () => allAccepted, 'batch');
    await runPool(batches, this.o.concurrency, async () => {
      const start = performance.now();
      const response = await this.load.send('POST', '/api/jobs/batch', body);
      const parsed = response.status === 201 ? parseJson(response) : undefined;
      if (Array.isArray(parsed)) {
        latencies[okRequests] = performance.now() - start;
        okRequests += 1;
        accepted += parsed.length;
      } else {
        errors.add(response, 'POST /api/jobs/batch');
        this.errors.add(response, 'POST /api/jobs/batch');
      }
      this.progress(`batch: ${accepted} of ${batches * batchSize} accepted`);
    }, () => performance.now() > deadline);
    const t1 = performance.now();
    allAccepted = true;
    const wait = await finished;
    const cpu = meter.read();
    if (!wait.done) this.timedOut = true;
    const { finished: _finished, ...outcome } = settled(wait.stats, base, accepted);
    return {
      batches,
      batch_size: batchSize,
      concurrency: this.o.concurrency,
      accepted,
      errors: errors.total,
      errors_by_kind: errors.kinds,
      accept_seconds: round((t1 - t0) / 1000, 3),
      accepted_per_s: round(accepted / ((t1 - t0) / 1000), 1),
      request_latency: latencySummary(latencies, okRequests),
      done: wait.done,
      processed_seconds: round((wait.at - t0) / 1000, 3),
      processed_per_s: wait.done ? round(accepted / ((wait.at - t0) / 1000), 1) : null,
      ...outcome,
      loadgen_cpu: { ...cpu, cpu_us_per_job: accepted ? round((cpu.cpu_ms * 1000) / accepted, 2) : null },
    };
  }

  async idle() {
    const k = this.o.idleSamples;
    const total = new Float64Array(k);
    const post = new Float64Array(k);
    const getsPerSample = [];
    const failures = [];
    const meter = new CpuMeter([this.single]);
    const deadline = performance.now() + this.o.timeoutMs;
    let n = 0;
    let transportFailures = 0; // in a row
    for (let i = 0; i < k && performance.now() < deadline; i++) {
      if (transportFailures >= 3) {
        this.lost = `${transportFailures} idle samples in a row failed to connect (${failures.at(-1).reason})`;
        break;
      }
      const t0 = performance.now();
      const created = await this.single.send('POST', '/api/jobs', this.createBody);
      const t1 = performance.now();
      const job = created.status === 201 ? parseJson(created) : undefined;
      if (!job || typeof job.id !== 'string') {
        this.errors.add(created, 'idle POST /api/jobs');
        failures.push({ sample: i, reason: created.status === 0 ? created.error : `HTTP ${created.status}` });
        transportFailures = created.status === 0 ? transportFailures + 1 : 0;
        continue;
      }
      const path = `/api/jobs/${job.id}`;
      const limit = Math.min(t0 + IDLE_SAMPLE_LIMIT_MS, deadline);
      let status = job.status;
      let gets = 0;
      let t2 = t1;
      let transportError = null;
      while (status !== 'completed' && status !== 'failed' && performance.now() < limit) {
        const response = await this.single.send('GET', path);
        t2 = performance.now();
        gets += 1;
        if (response.status === 200) {
          status = parseJson(response)?.status;
        } else {
          this.errors.add(response, 'idle GET /api/jobs/:id');
          if (response.status === 0) {
            transportError = response.error;
            break;
          }
        }
      }
      transportFailures = transportError ? transportFailures + 1 : 0;
      if (status !== 'completed') {
        const reason = transportError ?? (status === 'failed' ? 'job failed' : `still ${status} after ${round((t2 - t0) / 1000, 1)} s`);
        failures.push({ sample: i, reason });
        continue;
      }
      total[n] = t2 - t0;
      post[n] = t1 - t0;
      getsPerSample.push(gets);
      n += 1;
      this.progress(`idle: ${n} of ${k} samples`);
    }
    getsPerSample.sort((a, b) => a - b);
    return {
      samples: k,
      completed: n,
      failures,
      create_to_completed: latencySummary(total, n),
      post_alone: latencySummary(post, n),
      gets_per_sample_p50: n ? getsPerSample[Math.floor((n - 1) / 2)] : null,
      loadgen_cpu: meter.read(),
    };
  }

  close() {
    this.load.close();
    this.poller.close();
    this.single.close();
  }
}

// What the stats say about `expected` jobs since `base`: finished, failed, left over, and
// whether the table gained exactly that many rows (null when the stats never answered).
function settled(stats, base, expected) {
  if (!stats) return { finished: null, failed: null, unfinished: null, rows_gained: null, row_mismatch: null };
  const finished = delta(stats, base, 'completed') + delta(stats, base, 'failed');
  const rowsGained = totalJobs(stats) - totalJobs(base);
  return {
    finished,
    failed: delta(stats, base, 'failed'),
    unfinished: Math.max(0, expected - finished),
    rows_gained: rowsGained,
    row_mismatch: rowsGained - expected,
  };
}

function delta(stats, base, key) {
  return (Number(stats[key]) || 0) - (Number(base[key]) || 0);
}

function totalJobs(stats) {
  return Object.values(stats).reduce((sum, v) => sum + (Number.isFinite(Number(v)) ? Number(v) : 0), 0);
}

// ------------------------------------------------------------------------------------ main

function meta(options, target) {
  return {
    url: target.url,
    address: target.address,
    jobs: options.jobs,
    concurrency: options.concurrency,
    type: options.type,
    payload: options.payload,
    warmup: options.warmup,
    batches: options.batches,
    batch_size: options.batchSize,
    idle_samples: options.idleSamples,
    timeout_s: options.timeoutMs / 1000,
    poll_ms: options.pollMs,
    started_at: new Date().toISOString(),
    node: process.version,
    nproc: os.availableParallelism(),
    cpu_model: os.cpus()[0]?.model ?? null,
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg_at_start: os.loadavg().map((v) => round(v, 2)),
    argv: process.argv.slice(2).map((a, i, all) => (all[i - 1] === '--api-key' ? '***' : a)),
  };
}

function fmt(value, unit = '') {
  return value === null || value === undefined ? '-' : `${value}${unit}`;
}

function summary(result) {
  const lines = [];
  const m = result.meta;
  lines.push(`loadgen ${m.url}  N=${m.jobs} C=${m.concurrency} type=${m.type}  node ${m.node}, nproc ${m.nproc}, loadavg ${m.loadavg_at_start.join(' ')} -> ${(m.loadavg_at_end ?? []).join(' ')}`);
  if (result.warmup) lines.push(`warm-up       ${result.warmup.created} jobs in ${result.warmup.seconds} s${result.warmup.finished ? '' : ' (NOT finished)'}`);
  if (result.creates) {
    const c = result.creates;
    const l = c.latency;
    lines.push(`creates       ${c.requests_per_s} req/s (${c.created} of ${c.jobs} created in ${c.seconds} s), errors ${c.errors}`);
    lines.push(`  latency     p50 ${fmt(l.p50_ms, ' ms')}  p90 ${fmt(l.p90_ms, ' ms')}  p99 ${fmt(l.p99_ms, ' ms')}  max ${fmt(l.max_ms, ' ms')}`);
    for (const [kind, entry] of Object.entries(c.errors_by_kind)) lines.push(`  error       ${kind}: ${entry.count}  e.g. ${entry.samples[0]?.body ?? ''}`);
    lines.push(`  loadgen CPU ${c.loadgen_cpu.cpu_us_per_request} us/request (${c.loadgen_cpu.requests} requests incl. stats polls), ${c.loadgen_cpu.percent_of_one_core}% of a core`);
    const e = result.e2e;
    lines.push(`end to end    ${fmt(e.jobs_per_s, ' jobs/s')} (${e.jobs} jobs in ${e.seconds} s, ${e.tail_after_creates_s} s after the last create)${e.done ? '' : `  NOT FINISHED: ${e.unfinished} unfinished`}`);
    lines.push(`  outcome     failed ${e.failed}, rows gained ${e.rows_gained} (mismatch ${e.row_mismatch}), ${e.stats_polls} stats polls`);
  }
  if (result.batch) {
    const b = result.batch;
    lines.push(`batch         ${b.batches} x ${b.batch_size} at C=${b.concurrency}: accepted ${b.accepted_per_s} jobs/s (${b.accepted} in ${b.accept_seconds} s), processed ${fmt(b.processed_per_s, ' jobs/s')} (${b.processed_seconds} s)${b.done ? '' : `  NOT FINISHED: ${b.unfinished} unfinished`}`);
    lines.push(`  request     p50 ${fmt(b.request_latency.p50_ms, ' ms')}  max ${fmt(b.request_latency.max_ms, ' ms')}, errors ${b.errors}, failed jobs ${b.failed}; loadgen CPU ${b.loadgen_cpu.cpu_us_per_request} us/request, ${b.loadgen_cpu.cpu_us_per_job} us/job`);
  }
  if (result.idle) {
    const i = result.idle;
    lines.push(`idle          create->completed p50 ${fmt(i.create_to_completed.p50_ms, ' ms')}  p99 ${fmt(i.create_to_completed.p99_ms, ' ms')}  max ${fmt(i.create_to_completed.max_ms, ' ms')} (${i.completed} of ${i.samples})`);
    lines.push(`  POST alone  p50 ${fmt(i.post_alone.p50_ms, ' ms')}  p99 ${fmt(i.post_alone.p99_ms, ' ms')}; ${i.gets_per_sample_p50} GETs per sample (p50); loadgen CPU ${i.loadgen_cpu.cpu_us_per_request} us/request`);
    for (const f of i.failures.slice(0, 3)) lines.push(`  failure     sample ${f.sample}: ${f.reason}`);
  }
  const lg = result.loadgen_cpu;
  lines.push(`loadgen CPU   ${lg.cpu_us_per_request} us/request over all measured phases (${lg.requests} requests, ${lg.cpu_ms} ms CPU)`);
  if (result.server) {
    const s = result.server;
    lines.push(`server        peak RSS ${fmt(s.peak_rss_mib, ' MiB')} (${s.processes.length} process(es)), idle CPU ${fmt(s.idle_cpu?.percent_of_one_core, '% of a core')}${s.idle_cpu ? ` over ${s.idle_cpu.seconds} s` : ''}`);
  }
  if (result.errors.total) lines.push(`request errors ${result.errors.total}: ${Object.entries(result.errors.kinds).map(([k, v]) => `${k} x${v.count}`).join(', ')}`);
  lines.push(`result        ${result.outcome} (exit ${result.exit_code})`);
  return lines.join('\n');
}

async function main() {
  const setupLimit = setTimeout(() => {
    process.stderr.write('loadgen: no start within 60 s, exiting\n');
    process.exit(EXIT_USAGE);
  }, 60_000);
  setupLimit.unref();
  let options;
  let target;
  try {
    options = parseOptions(process.argv.slice(2));
    target = await resolveTarget(options.url);
  } catch (err) {
    process.stderr.write(`loadgen: ${err.message}\n${err instanceof UsageError ? '' : err.stack}\n`);
    process.exit(EXIT_USAGE);
  }
  clearTimeout(setupLimit);
  // Every phase is bounded by --timeout (the idle phase too); the whole run by all of them.
  const limitMs = 4 * options.timeoutMs + options.idleCpuSeconds * 1000 + 60_000;
  setTimeout(() => {
    process.stderr.write(`loadgen: hard time limit of ${limitMs / 1000} s reached, exiting\n`);
    process.exit(EXIT_TIMEOUT);
  }, limitMs).unref();

  const run = new Run(options, target);
  const result = { meta: meta(options, target) };
  const health = await run.poller.send('GET', '/health');
  if (health.status !== 200) {
    process.stderr.write(`loadgen: ${target.url}/health answered ${health.status || health.error}\n`);
    run.close();
    process.exit(EXIT_USAGE);
  }
  result.meta.health = parseJson(health) ?? null;
  run.watch.sample();
  try {
    if (options.warmup > 0) {
      run.progress(`warm-up: ${options.warmup} creates`, true);
      result.warmup = await run.warmup();
    }
    const meter = new CpuMeter([run.load, run.poller, run.single]);
    if (options.jobs > 0 && !run.timedOut && !run.lost) {
      run.progress(`creates: ${options.jobs} at concurrency ${options.concurrency}`, true);
      Object.assign(result, await run.creates());
      run.watch.sample();
    }
    if (options.batches > 0 && !run.timedOut && !run.lost) {
      run.progress(`batch: ${options.batches} x ${options.batchSize}`, true);
      result.batch = await run.batch();
      run.watch.sample();
    }
    if (options.idleSamples > 0 && !run.timedOut && !run.lost) {
      run.progress(`idle: ${options.idleSamples} samples`, true);
      result.idle = await run.idle();
      run.watch.sample();
    }
    result.loadgen_cpu = meter.read();
    if (options.pids.length > 0) {
      result.server = {};
      if (options.idleCpuSeconds > 0 && !run.timedOut && !run.lost) {
        run.progress(`server idle CPU over ${options.idleCpuSeconds} s`, true);
        await sleep(1000); // let the last outcomes settle
        result.server.idle_cpu = await run.watch.idleCpu(options.idleCpuSeconds);
      }
      run.watch.sample();
      Object.assign(result.server, run.watch.report());
    }
  } finally {
    run.close();
  }
  result.meta.loadavg_at_end = os.loadavg().map((v) => round(v, 2));
  result.meta.finished_at = new Date().toISOString();
  result.errors = { total: run.errors.total, kinds: run.errors.kinds };

  const notClean = run.errors.total > 0
    || (result.e2e && (result.e2e.failed > 0 || result.e2e.row_mismatch !== 0))
    || (result.batch && (result.batch.failed > 0 || result.batch.row_mismatch !== 0 || result.batch.errors > 0))
    || (result.idle && result.idle.failures.length > 0);
  if (run.lost) {
    result.outcome = `server lost: ${run.lost}`;
    result.exit_code = EXIT_TIMEOUT;
  } else if (run.timedOut) {
    result.outcome = 'timed out';
    result.exit_code = EXIT_TIMEOUT;
  } else if (notClean) {
    result.outcome = 'finished, not clean';
    result.exit_code = EXIT_ERRORS;
  } else {
    result.outcome = 'clean';
    result.exit_code = EXIT_OK;
  }
  if (options.jsonPath) fs.writeFileSync(options.jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${summary(result)}\n`);
  process.exitCode = result.exit_code;
}

main().catch((err) => {
  process.stderr.write(`loadgen: ${err.stack ?? err}\n`);
  process.exit(err instanceof UsageError ? EXIT_USAGE : EXIT_TIMEOUT);
});
