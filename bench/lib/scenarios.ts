/**
 * The scenarios, in their fixed order: baseline, checkin (202), checkin-401, me, baseline-2, then the
 * login pair (healthz-idle, login, healthz-during-login). Each measured run records the load result,
 * the Redis commands per request (INFO commandstats), the round trips per request (a short sequential
 * probe) and the CPU the serving process and redis-server spent per response.
 */
import type { SpawnedRedis } from '@ncc/testing';
import { fmt, log } from './format.js';
import { load, type LoadOptions, type LoadRequest, type LoadResult } from './load.js';
import { processCpuSeconds, type Started } from './processes.js';
import { commandCounts, commandDelta, type CommandCounts, roundTripsPerRequest } from './redis-stats.js';
import { BCRYPT_COST, bcryptjs, benchEmail, PASSWORD, type Session } from './users.js';

const PROBE_REQUESTS = 20;

export interface Scenario {
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

export interface BenchSettings {
  durationS: number;
  warmupS: number;
  connections: number;
  cores: number;
  smoke: boolean;
  /** Run only these (the baseline always runs). */
  only: Set<string> | undefined;
  /** How many bench users exist (logins rotate over all of them). */
  users: number;
}

export interface Servers {
  redis: SpawnedRedis;
  auth: Started;
  checkin: Started;
  baseline: Started;
}

export interface ScenarioResults {
  results: Scenario[];
  /** req/s of the two baseline runs. */
  baselineRuns: number[];
  /** Their mean: what every ratio is relative to. */
  baselineRps: number;
  /** Median time of one bcrypt compare (mean of before and after the login run); null without the login scenario. */
  compareMs: number | null;
}

export function unexpectedOf(result: LoadResult, expected: number): number {
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

/** A scenario row for a run whose Redis work is not counted (the /healthz probes). */
function healthRow(name: string, label: string, result: LoadResult, cpuUsPerRequest: number): Scenario {
  return {
    name,
    label,
    expected: 200,
    load: result,
    unexpected: unexpectedOf(result, 200),
    redisPerRequest: {},
    redisCommandsPerRequest: 0,
    roundTrips: null,
    cpuUsPerRequest,
    redisCpuUsPerRequest: 0,
    ratio: 0,
  };
}

/** What a measured run needs besides its own options. */
interface Context {
  servers: Servers;
  settings: BenchSettings;
}

// autocannon stops with up to `connections` requests in flight; the server still completes them.
// Wait for that before counting anything else, or they land in the next scenario's numbers.
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

/** Location ids handed out so far in this bench run (one counter for every scenario, so no two checkins collide). */
let locationId = 0;

/** A body factory for `userId`: every call a location never used before in this run, so an accepted checkin (202), never a duplicate. */
export const checkinBody = (userId: number) => (): string => {
  locationId++;
  return JSON.stringify({ userId, locationId, starRating: locationId % 6 });
};

/** The authenticated checkin load (the `checkin` scenario's): connection c checks in as session c (round robin), each body unique → 202. */
export const authenticatedCheckins =
  (sessions: Session[]) =>
  (c: number): LoadRequest => {
    const session = sessions[c % sessions.length]!;
    return { method: 'POST', path: '/api/checkin', headers: { cookie: session.cookie }, body: checkinBody(session.userId) };
  };

const redisCpu = ({ redis }: Servers): number => (redis.pid === undefined ? 0 : processCpuSeconds(redis.pid));

const post = (url: string, body: string, cookie?: string): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body });

/**
 * One scenario: a warm-up, then the measured load with Redis' command counters and both processes'
 * CPU read around it, then (with `probe`) the round trips per request from PROBE_REQUESTS sequential requests.
 */
async function measure(
  { servers, settings }: Context,
  name: string,
  label: string,
  expected: number,
  options: { server: Started; url: string; request: LoadOptions['request'] },
  probe?: (i: number) => Promise<Response>,
): Promise<Scenario> {
  const { redis } = servers;
  const base = { url: options.url, connections: settings.connections, request: options.request };
  if (settings.warmupS > 0) {
    await load({ ...base, durationS: settings.warmupS });
    await settle();
  }
  const before = await commandCounts(redis.client);
  const cpu0 = options.server.cpuSeconds();
  const redisCpu0 = redisCpu(servers);
  const result = await load({ ...base, durationS: settings.durationS });
  const cpu = options.server.cpuSeconds() - cpu0;
  const redisCpuUsed = redisCpu(servers) - redisCpu0;
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
  log(
    `  ${name}: ${fmt(result.rps)} req/s, p99 ${result.p99} ms, statuses ${JSON.stringify(result.statuses)}${result.errors ? `, ${result.errors} errors` : ''}`,
  );
  return {
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
}

/**
 * healthz-idle, login and healthz-during-login: logins at full load with a light /healthz probe
 * alongside, the same probe without logins as the machine's own noise, and the bcrypt compare time
 * the login target is computed from.
 */
async function loginScenarios({ servers, settings }: Context, hash: string, loginBody: () => string): Promise<{ rows: Scenario[]; compareMs: number }> {
  const { auth, redis } = servers;
  const { connections, cores, durationS, warmupS, smoke } = settings;
  const compareBefore = bcryptCompareMs(hash, smoke ? 3 : 7);
  log(`  one bcrypt compare at cost ${BCRYPT_COST}: ${compareBefore.toFixed(1)} ms (median, this thread)`);
  // Queued logins take seconds to drain (50 × one compare ÷ threads): warm up with one connection
  // per core, and after the run wait until a login is answered in about one compare's time again.
  const drainLogins = async (): Promise<void> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const t = performance.now();
      const res = await post(`${auth.url}/login`, loginBody());
      await res.arrayBuffer();
      if (performance.now() - t < 3 * compareBefore + 50 || Date.now() > deadline) return;
    }
  };
  const logins = (n: number, seconds: number) =>
    load({ url: auth.url, connections: n, durationS: seconds, request: () => ({ method: 'POST', path: '/login', body: loginBody }) });
  const healthProbe = () => load({ url: auth.url, connections: 2, durationS, overallRate: 100, request: () => ({ method: 'GET', path: '/healthz' }) });
  if (warmupS > 0) {
    await logins(cores, warmupS);
    await drainLogins();
  }
  // The same /healthz probe without logins: what this machine's scheduling noise alone costs.
  let cpu0 = auth.cpuSeconds();
  const healthIdle = await healthProbe();
  const healthIdleCpu = auth.cpuSeconds() - cpu0;
  // Logins at full load, and a light /healthz probe (2 connections, ≤ 100 req/s) at the same time.
  cpu0 = auth.cpuSeconds();
  const redisCpu0 = redisCpu(servers);
  const [loginResult, healthResult] = await Promise.all([logins(connections, durationS), healthProbe()]);
  const loginCpu = auth.cpuSeconds() - cpu0;
  const loginRedisCpu = redisCpu(servers) - redisCpu0;
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
  const compareAfter = bcryptCompareMs(hash, smoke ? 3 : 7);
  log(`  login: ${fmt(loginResult.rps, 1)} req/s, p99 ${loginResult.p99} ms; /healthz p99 ${healthResult.p99} ms`);
  const login: Scenario = {
    name: 'login',
    label: `POST /login (bcrypt cost ${BCRYPT_COST})`,
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
  };
  return {
    rows: [
      healthRow('healthz-idle', '/healthz, no other load (reference)', healthIdle, (healthIdleCpu * 1e6) / Math.max(1, healthIdle.requests)),
      login,
      healthRow('healthz-during-login', '/healthz while logins run', healthResult, 0),
    ],
    compareMs: (compareBefore + compareAfter) / 2,
  };
}

/** Every wanted scenario against the started servers, with `sessions` logged in and `hash` the users' password hash. */
export async function runScenarios(servers: Servers, sessions: Session[], hash: string, settings: BenchSettings): Promise<ScenarioResults> {
  const { auth, checkin, baseline } = servers;
  const ctx: Context = { servers, settings };
  const wanted = (name: string): boolean => !settings.only || settings.only.has(name);

  let loginUser = 0;
  const loginBody = (): string => {
    loginUser = (loginUser % settings.users) + 1;
    return JSON.stringify({ email: benchEmail(loginUser), password: PASSWORD });
  };
  const session = (c: number) => sessions[c % sessions.length]!;

  const results: Scenario[] = [];
  const baselineRuns: number[] = [];
  const baselineScenario = async (name: string): Promise<void> => {
    const row = await measure(
      ctx,
      name,
      'baseline: bare Express JSON POST',
      202,
      {
        server: baseline,
        url: baseline.url,
        request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
      },
      () => post(`${baseline.url}/api/checkin`, checkinBody(1)()),
    );
    baselineRuns.push(row.load.rps);
    results.push(row);
  };

  await baselineScenario('baseline');
  if (wanted('checkin')) {
    results.push(
      await measure(
        ctx,
        'checkin',
        'checkin, authenticated → 202',
        202,
        {
          server: checkin,
          url: checkin.url,
          request: authenticatedCheckins(sessions),
        },
        () => post(`${checkin.url}/api/checkin`, checkinBody(session(0).userId)(), session(0).cookie),
      ),
    );
  }
  if (wanted('checkin-401')) {
    results.push(
      await measure(
        ctx,
        'checkin-401',
        'checkin, no cookie → 401',
        401,
        {
          server: checkin,
          url: checkin.url,
          request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
        },
        () => post(`${checkin.url}/api/checkin`, checkinBody(1)()),
      ),
    );
  }
  if (wanted('me')) {
    results.push(
      await measure(
        ctx,
        'me',
        'GET /me with a session',
        200,
        {
          server: auth,
          url: auth.url,
          request: (c) => ({ method: 'GET', path: '/me', headers: { cookie: session(c).cookie } }),
        },
        () => fetch(`${auth.url}/me`, { headers: { cookie: session(0).cookie } }),
      ),
    );
  }
  // The baseline again, so a noisy neighbour during the run shows up as a spread between the two.
  await baselineScenario('baseline-2');

  let compareMs: number | null = null;
  if (wanted('login')) {
    const login = await loginScenarios(ctx, hash, loginBody);
    results.push(...login.rows);
    compareMs = login.compareMs;
  }

  const baselineRps = baselineRuns.reduce((a, b) => a + b, 0) / Math.max(1, baselineRuns.length);
  for (const s of results) s.ratio = s.load.rps / baselineRps;
  return { results, baselineRuns, baselineRps, compareMs };
}
