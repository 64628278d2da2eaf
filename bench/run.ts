/**
 * `pnpm bench`: the services in production mode on a spawned redis-server, loaded with autocannon,
 * compared with a bare Express JSON endpoint measured in the same run. Prints one table, writes
 * bench/results/latest.json, marks each target met or missed.
 *
 *   pnpm bench                       10 s per scenario against dist/ (pnpm bench builds first)
 *   pnpm bench --duration 20         longer runs
 *   pnpm bench --cluster 2           each service as 2 node:cluster workers
 *   pnpm bench --cpu-prof            also write V8 CPU profiles of both services to bench/results/profiles/
 *   pnpm bench --only checkin,me     a subset (the baseline always runs)
 *   pnpm bench --duration 1 --smoke  what the test suite runs: statuses checked, targets not enforced
 *   --source                         run the services from TypeScript source (tsx) instead of dist/
 *   --node-flags='--max-semi-space-size=64'   extra node flags for both services
 *
 * Exit code 1 when any response had an unexpected status (or a connection error/timeout), and — unless
 * --smoke — when a target is missed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, spawnRedis, type SpawnedRedis } from '@ncc/testing';
import { UsersRepository } from '../services/auth/src/data-access/users-repository.js';
import { load, type LoadResult } from './lib/load.js';
import { clustered, type Mode, processCpuSeconds, ROOT, serviceArgs, type Started, startProcess } from './lib/processes.js';
import { commandCounts, commandDelta, type CommandCounts, roundTripsPerRequest } from './lib/redis-stats.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '50' },
    cluster: { type: 'string', default: '1' },
    only: { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench/results/latest.json') },
    smoke: { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    /** Extra node flags for both services, e.g. --node-flags=--max-semi-space-size=64 */
    'node-flags': { type: 'string' },
  },
});

const durationS = Number(args.duration);
const warmupS = args.warmup !== undefined ? Number(args.warmup) : args.smoke ? 0.5 : Math.min(3, durationS);
const connections = Number(args.connections);
const workers = Number(args.cluster);
const mode: Mode = args.source ? 'source' : 'dist';
const only = args.only ? new Set(args.only.split(',')) : undefined;
for (const [name, value] of [['duration', durationS], ['warmup', warmupS], ['connections', connections], ['cluster', workers]] as const) {
  if (!Number.isFinite(value) || value < 0 || (name !== 'warmup' && value === 0)) throw new Error(`--${name} must be a positive number`);
}

const SECRET = 'bench-session-secret-0123456789abcdefghijklmnop';
const USERS = 250;
const SESSIONS = Math.min(connections, USERS);
const PASSWORD = 'bench-password-1';
const PROBE_REQUESTS = 20;
const cores = availableParallelism();

/** bcryptjs is the auth service's dependency; the bench borrows it from there. */
interface Bcrypt {
  hashSync(password: string, rounds: number): string;
  compareSync(password: string, hash: string): boolean;
}
const bcryptjs = (): Bcrypt => createRequire(join(ROOT, 'services/auth/package.json'))('bcryptjs') as Bcrypt;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Scenario {
  name: string;
  label: string;
  expected: number;
  load: LoadResult;
  unexpected: number;
  redisPerRequest: CommandCounts;
  redisCommandsPerRequest: number;
  roundTrips: number | null;
  /** CPU time the serving process (all its threads and cluster workers) spent per response, in µs. */
  cpuUsPerRequest: number;
  /** CPU time redis-server spent per response, in µs. */
  redisCpuUsPerRequest: number;
  ratio: number;
}

interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean;
}

function unexpectedOf(result: LoadResult, expected: number): number {
  let n = result.errors + result.timeouts;
  for (const [code, count] of Object.entries(result.statuses)) if (Number(code) !== expected) n += count;
  return n;
}

function perRequest(delta: CommandCounts, requests: number): CommandCounts {
  const out: CommandCounts = {};
  for (const [name, calls] of Object.entries(delta)) out[name] = requests > 0 ? calls / requests : 0;
  return out;
}

const sum = (counts: CommandCounts): number => Object.values(counts).reduce((a, b) => a + b, 0);
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Median time of one bcryptjs compare at the given cost, on this thread (as one worker thread does it). */
function bcryptCompareMs(hash: string, samples: number): number {
  const bcrypt = bcryptjs();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    bcrypt.compareSync(PASSWORD, hash);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function main(): Promise<number> {
  const started = Date.now();
  const loadBefore = loadavg();
  log(`bench: ${durationS}s per scenario, ${connections} connections, services from ${mode}${workers > 1 ? `, ${workers} cluster workers each` : ''}, ${cores} cores`);
  const redis: SpawnedRedis = await spawnRedis();
  const processes: Started[] = [];
  try {
    const bcrypt = bcryptjs();
    // One cost-10 hash for every bench user: seeding 250 users then takes milliseconds, and each login
    // still costs one full cost-10 compare.
    const hash = bcrypt.hashSync(PASSWORD, 10);
    const users = new UsersRepository(redis.client);
    for (let i = 1; i <= USERS; i++) {
      await users.save({ id: 100_000 + i, email: `bench.user${i}@example.com`, firstName: 'Bench', lastName: `User${i}`, passwordHash: hash });
    }

    const [authPort, checkinPort, basePort] = await Promise.all([freePort(), freePort(), freePort()]);
    const profileDir = join(ROOT, 'bench/results/profiles');
    const nodeFlags = [
      ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      ...(args['node-flags']?.split(/\s+/).filter(Boolean) ?? []),
    ];
    if (args['cpu-prof']) mkdirSync(profileDir, { recursive: true });
    const passThrough = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => /^(LOGIN_|RATE_LIMIT|CHECKIN_)/.test(k) && v !== undefined)) as Record<string, string>;
    const serviceEnv = {
      NODE_ENV: 'production',
      SESSION_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      // Production cookies are Secure by default; this bench talks plain HTTP on loopback.
      COOKIE_SECURE: 'false',
      REDIS_URL: redis.url,
      HOST: '127.0.0.1',
      // Each bench connection is one user checking in hundreds of times a second: far past the per-user
      // limit (30/min), which is not what the bench measures. The limit is still checked (same script).
      CHECKIN_RATE_LIMIT_PER_USER: '1000000',
      ...passThrough,
    };
    const [auth, checkin, baseline] = await Promise.all([
      startProcess('auth', clustered([...nodeFlags, ...serviceArgs('auth', mode)], workers), { ...serviceEnv, AUTH_PORT: String(authPort) }, authPort),
      startProcess('checkin', clustered([...nodeFlags, ...serviceArgs('checkin', mode)], workers), { ...serviceEnv, CHECKIN_PORT: String(checkinPort) }, checkinPort),
      startProcess('baseline', ['bench/baseline-server.mjs', String(basePort)], {}, basePort),
    ]);
    processes.push(auth, checkin, baseline);

    // Log in one session per connection (distinct users, as real traffic would be).
    const sessions: { userId: number; cookie: string }[] = [];
    for (let i = 1; i <= SESSIONS; i++) {
      const res = await fetch(`${auth.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `bench.user${i}@example.com`, password: PASSWORD }),
      });
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('checkinapp='))?.split(';')[0];
      if (res.status !== 200 || !cookie) throw new Error(`login of bench.user${i} failed: ${res.status} ${await res.text()}`);
      sessions.push({ userId: 100_000 + i, cookie });
    }

    let locationId = 0;
    const checkinBody = (userId: number) => (): string => {
      locationId++;
      return JSON.stringify({ userId, locationId, starRating: locationId % 6 });
    };
    let loginUser = 0;
    const loginBody = (): string => {
      loginUser = (loginUser % USERS) + 1;
      return JSON.stringify({ email: `bench.user${loginUser}@example.com`, password: PASSWORD });
    };
    const session = (c: number) => sessions[c % sessions.length]!;

    const results: Scenario[] = [];
    const baselineRuns: number[] = [];
    const baselineRps = (): number => baselineRuns.reduce((a, b) => a + b, 0) / Math.max(1, baselineRuns.length);

    const run = async (
      name: string,
      label: string,
      expected: number,
      options: { server: Started; url: string; request: Parameters<typeof load>[0]['request']; connections?: number },
      probe?: (i: number) => Promise<Response>,
    ): Promise<Scenario> => {
      const base = { url: options.url, connections: options.connections ?? connections, request: options.request };
      if (warmupS > 0) {
        await load({ ...base, durationS: warmupS });
        await settle();
      }
      const before = await commandCounts(redis.client);
      const cpu0 = options.server.cpuSeconds();
      const redisCpu0 = redisCpu();
      const result = await load({ ...base, durationS });
      const cpu = options.server.cpuSeconds() - cpu0;
      const redisCpuUsed = redisCpu() - redisCpu0;
      const after = await commandCounts(redis.client);
      await settle();
      const delta = perRequest(commandDelta(before, after), result.requests);
      let roundTrips: number | null = null;
      if (probe) {
        roundTrips = await roundTripsPerRequest(redis.client, PROBE_REQUESTS, async (i) => {
          const res = await probe(i);
          await res.arrayBuffer();
          if (res.status !== expected) throw new Error(`${name} probe: expected ${expected}, got ${res.status}`);
        });
      }
      const scenario: Scenario = {
        name,
        label,
        expected,
        load: result,
        unexpected: unexpectedOf(result, expected),
        redisPerRequest: delta,
        redisCommandsPerRequest: sum(delta),
        roundTrips,
        cpuUsPerRequest: (cpu * 1e6) / Math.max(1, result.requests),
        redisCpuUsPerRequest: (redisCpuUsed * 1e6) / Math.max(1, result.requests),
        ratio: 0,
      };
      log(`  ${name}: ${fmt(result.rps)} req/s, p99 ${result.p99} ms, statuses ${JSON.stringify(result.statuses)}${result.errors ? `, ${result.errors} errors` : ''}`);
      return scenario;
    };

    // autocannon stops with up to `connections` requests in flight; the server still completes them.
    // Wait for that before counting anything else, or they land in the next scenario's numbers.
    const redisCpu = (): number => (redis.pid === undefined ? 0 : processCpuSeconds(redis.pid));
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

    const wanted = (name: string): boolean => !only || only.has(name);
    const post = (url: string, body: string, cookie?: string): Promise<Response> =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body });

    const baselineScenario = (name: string) =>
      run(name, 'baseline: bare Express JSON POST', 202, {
        server: baseline,
        url: baseline.url,
        request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
      }, () => post(`${baseline.url}/api/checkin`, checkinBody(1)()));

    const first = await baselineScenario('baseline');
    baselineRuns.push(first.load.rps);
    results.push(first);

    if (wanted('checkin')) {
      results.push(
        await run('checkin', 'checkin, authenticated → 202', 202, {
          server: checkin,
          url: checkin.url,
          request: (c) => ({ method: 'POST', path: '/api/checkin', headers: { cookie: session(c).cookie }, body: checkinBody(session(c).userId) }),
        }, () => post(`${checkin.url}/api/checkin`, checkinBody(session(0).userId)(), session(0).cookie)),
      );
    }
    if (wanted('checkin-401')) {
      results.push(
        await run('checkin-401', 'checkin, no cookie → 401', 401, {
          server: checkin,
          url: checkin.url,
          request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
        }, () => post(`${checkin.url}/api/checkin`, checkinBody(1)())),
      );
    }
    if (wanted('me')) {
      results.push(
        await run('me', 'GET /me with a session', 200, {
          server: auth,
          url: auth.url,
          request: (c) => ({ method: 'GET', path: '/me', headers: { cookie: session(c).cookie } }),
        }, () => fetch(`${auth.url}/me`, { headers: { cookie: session(0).cookie } })),
      );
    }
    // The baseline again, so a noisy neighbour during the run shows up as a spread between the two.
    const second = await baselineScenario('baseline-2');
    baselineRuns.push(second.load.rps);
    results.push(second);

    let compareMs: number | null = null;
    if (wanted('login')) {
      compareMs = bcryptCompareMs(hash, args.smoke ? 3 : 7);
      log(`  one bcrypt compare at cost 10: ${compareMs.toFixed(1)} ms (median, this thread)`);
      // Queued logins take seconds to drain (50 × one compare ÷ threads): warm up with one connection
      // per core, and after the run wait until a login is answered in about one compare's time again.
      const drainLogins = async (): Promise<void> => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const t = performance.now();
          const res = await post(`${auth.url}/login`, loginBody());
          await res.arrayBuffer();
          if (performance.now() - t < 3 * compareMs! + 50 || Date.now() > deadline) return;
        }
      };
      if (warmupS > 0) {
        await load({ url: auth.url, connections: cores, durationS: warmupS, request: () => ({ method: 'POST', path: '/login', body: loginBody }) });
        await drainLogins();
      }
      // The same /healthz probe without logins: what this machine's scheduling noise alone costs.
      let cpu0 = auth.cpuSeconds();
      const healthIdle = await load({ url: auth.url, connections: 2, durationS, overallRate: 100, request: () => ({ method: 'GET', path: '/healthz' }) });
      const healthIdleCpu = auth.cpuSeconds() - cpu0;
      results.push({
        name: 'healthz-idle',
        label: '/healthz, no other load (reference)',
        expected: 200,
        load: healthIdle,
        unexpected: unexpectedOf(healthIdle, 200),
        redisPerRequest: {},
        redisCommandsPerRequest: 0,
        roundTrips: null,
        cpuUsPerRequest: (healthIdleCpu * 1e6) / Math.max(1, healthIdle.requests),
        redisCpuUsPerRequest: 0,
        ratio: 0,
      });
      // Logins at full load, and a light /healthz probe (2 connections, ≤ 100 req/s) at the same time.
      cpu0 = auth.cpuSeconds();
      const redisCpu0 = redisCpu();
      const [loginResult, healthResult] = await Promise.all([
        load({ url: auth.url, connections, durationS, request: () => ({ method: 'POST', path: '/login', body: loginBody }) }),
        load({ url: auth.url, connections: 2, durationS, overallRate: 100, request: () => ({ method: 'GET', path: '/healthz' }) }),
      ]);
      const loginCpu = auth.cpuSeconds() - cpu0;
      const loginRedisCpu = redisCpu() - redisCpu0;
      await drainLogins();
      // Commands per login from a few sequential logins once the queue is empty: under load the
      // window's edges cut through seconds-long queued logins and would skew a per-request count.
      const before = await commandCounts(redis.client);
      const loginRoundTrips = await roundTripsPerRequest(redis.client, 5, async () => {
        const res = await post(`${auth.url}/login`, loginBody());
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`login probe: expected 200, got ${res.status}`);
      });
      const loginDelta = perRequest(commandDelta(before, await commandCounts(redis.client)), 5);
      const compareAfter = bcryptCompareMs(hash, args.smoke ? 3 : 7);
      compareMs = (compareMs + compareAfter) / 2;
      results.push({
        name: 'login',
        label: 'POST /login (bcrypt cost 10)',
        expected: 200,
        load: loginResult,
        unexpected: unexpectedOf(loginResult, 200),
        redisPerRequest: loginDelta,
        redisCommandsPerRequest: sum(loginDelta),
        roundTrips: loginRoundTrips,
        // Includes the bcrypt worker threads (and the light /healthz probe running alongside).
        cpuUsPerRequest: (loginCpu * 1e6) / Math.max(1, loginResult.requests),
        redisCpuUsPerRequest: (loginRedisCpu * 1e6) / Math.max(1, loginResult.requests),
        ratio: 0,
      });
      results.push({
        name: 'healthz-during-login',
        label: '/healthz while logins run',
        expected: 200,
        load: healthResult,
        unexpected: unexpectedOf(healthResult, 200),
        redisPerRequest: {},
        redisCommandsPerRequest: 0,
        roundTrips: null,
        cpuUsPerRequest: 0,
        redisCpuUsPerRequest: 0,
        ratio: 0,
      });
      log(`  login: ${fmt(loginResult.rps, 1)} req/s, p99 ${loginResult.p99} ms; /healthz p99 ${healthResult.p99} ms`);
    }

    const base = baselineRps();
    for (const s of results) s.ratio = s.load.rps / base;

    // ---- targets -------------------------------------------------------------------------------
    const byName = new Map(results.map((s) => [s.name, s]));
    const targets: Target[] = [];
    const checkinS = byName.get('checkin');
    if (checkinS) {
      targets.push({ name: 'checkin throughput', target: '≥ 0.60× baseline', measured: `${checkinS.ratio.toFixed(2)}×`, met: checkinS.ratio >= 0.6 });
      targets.push({
        name: 'Redis round trips per accepted checkin',
        target: '≤ 2',
        measured: `${checkinS.roundTrips?.toFixed(2)} (commands/req ${checkinS.redisCommandsPerRequest.toFixed(2)} incl. Lua-internal)`,
        met: checkinS.roundTrips !== null && checkinS.roundTrips <= 2.05,
      });
    }
    const unauth = byName.get('checkin-401');
    if (unauth) {
      targets.push({ name: '401 throughput', target: '≥ 0.85× baseline', measured: `${unauth.ratio.toFixed(2)}×`, met: unauth.ratio >= 0.85 });
      targets.push({ name: 'Redis commands per 401', target: '0', measured: unauth.redisCommandsPerRequest.toFixed(3), met: unauth.redisCommandsPerRequest === 0 });
    }
    const loginS = byName.get('login');
    const health = byName.get('healthz-during-login');
    let loginCeiling: number | null = null;
    if (loginS && health && compareMs !== null) {
      loginCeiling = cores / (compareMs / 1000);
      targets.push({
        name: 'login throughput',
        target: `≥ 0.8 × ${cores} cores ÷ ${compareMs.toFixed(1)} ms = ${fmt(0.8 * loginCeiling, 1)} req/s`,
        measured: `${fmt(loginS.load.rps, 1)} req/s (${(loginS.load.rps / loginCeiling).toFixed(2)} of the ceiling)`,
        met: loginS.load.rps >= 0.8 * loginCeiling,
      });
      const idle = byName.get('healthz-idle');
      targets.push({
        name: '/healthz p99 while logins run',
        target: '< 20 ms',
        measured: `${health.load.p99} ms (p50 ${health.load.p50} ms; with no load: p99 ${idle?.load.p99 ?? '?'} ms)`,
        met: health.load.p99 < 20,
      });
    }

    // ---- report --------------------------------------------------------------------------------
    const unexpected = results.reduce((n, s) => n + s.unexpected, 0);
    const spread = baselineRuns.length === 2 ? Math.abs(baselineRuns[0]! - baselineRuns[1]!) / base : 0;
    const header = ['scenario', 'expect', 'req/s', 'p50 ms', 'p99 ms', 'unexpected', '× baseline', 'Redis cmds/req', 'round trips/req', 'CPU µs/req', 'Redis CPU µs/req'];
    const rows = results.map((s) => [
      s.name,
      String(s.expected),
      fmt(s.load.rps, s.load.rps < 100 ? 1 : 0),
      String(s.load.p50),
      String(s.load.p99),
      String(s.unexpected),
      s.ratio.toFixed(s.ratio < 0.1 ? 4 : 2),
      s.name.startsWith('healthz') ? '0' : s.redisCommandsPerRequest.toFixed(2),
      s.roundTrips === null ? '–' : s.roundTrips.toFixed(2),
      s.cpuUsPerRequest > 0 ? fmt(s.cpuUsPerRequest) : '–',
      s.redisCpuUsPerRequest > 0 ? fmt(s.redisCpuUsPerRequest, 1) : '–',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    const table = [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
    const redisLines = results
      .filter((s) => !s.name.startsWith('healthz'))
      .map((s) => {
        const parts = Object.entries(s.redisPerRequest)
          .sort((a, b) => b[1] - a[1])
          .map(([cmd, n]) => `${cmd} ${n.toFixed(3)}`);
        return `  ${s.name.padEnd(12)} ${parts.length > 0 ? parts.join(', ') : 'none'}`;
      })
      .join('\n');
    const targetLines = targets.map((t) => `  [${t.met ? 'met' : 'MISSED'}] ${t.name}: ${t.target}; measured ${t.measured}`).join('\n');

    const out = [
      '',
      table,
      '',
      `baseline = mean of two runs (${baselineRuns.map((r) => fmt(r)).join(' and ')} req/s, spread ${(spread * 100).toFixed(0)}%)`,
      'Redis commands per request (INFO commandstats deltas, the bench\'s INFO excluded; includes commands run inside the checkin Lua script):',
      redisLines,
      'Targets:',
      targetLines,
      unexpected > 0 ? `\nFAILED: ${unexpected} responses with an unexpected status, connection errors or timeouts.` : '',
    ].join('\n');
    process.stdout.write(`${out}\n`);

    const missed = targets.filter((t) => !t.met);
    const report = {
      date: new Date(started).toISOString(),
      machine: { cores, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverageBefore: loadBefore.map((l) => Number(l.toFixed(2))), loadAverageAfter: loadavg().map((l) => Number(l.toFixed(2))) },
      options: { durationS, warmupS, connections, clusterWorkers: workers, servicesFrom: mode, smoke: args.smoke },
      baselineRps: base,
      baselineRuns,
      bcrypt: compareMs === null ? null : { cost: 10, compareMs, cores, loginCeilingRps: loginCeiling },
      scenarios: results.map((s) => ({
        name: s.name,
        label: s.label,
        expectedStatus: s.expected,
        rps: s.load.rps,
        requests: s.load.requests,
        durationS: s.load.durationS,
        p50Ms: s.load.p50,
        p99Ms: s.load.p99,
        maxMs: s.load.max,
        statuses: s.load.statuses,
        errors: s.load.errors,
        timeouts: s.load.timeouts,
        unexpected: s.unexpected,
        ratioToBaseline: s.ratio,
        redisCommandsPerRequest: s.redisCommandsPerRequest,
        redisPerRequestByCommand: s.redisPerRequest,
        redisRoundTripsPerRequest: s.roundTrips,
        cpuUsPerRequest: s.cpuUsPerRequest,
        redisCpuUsPerRequest: s.redisCpuUsPerRequest,
      })),
      targets,
      table,
      ok: unexpected === 0 && (args.smoke || missed.length === 0),
    };
    const outPath = resolve(args.out);
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${outPath} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    if (unexpected > 0) return 1;
    if (missed.length > 0 && !args.smoke) {
      log(`${missed.length} target(s) missed.`);
      return 1;
    }
    return 0;
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
