/**
 * The HTTP scenarios. The baseline (a bare Express JSON POST) and checkin (202), checkin-401, me and
 * the floor (the baseline plus an accepted checkin's GET and EVALSHA through ioredis, nothing else) run
 * as interleaved rounds (bench/lib/rounds.ts): baseline, checkin, checkin-401, me, floor, baseline, …,
 * baseline — each scenario's ratio paired with the baseline runs around it, medians over the rounds.
 * After the rounds, a short sequential probe per scenario counts its Redis round trips.
 *
 * Then the login rounds: in each, the /healthz probe alone (this machine's own noise), then logins at
 * full load with the same probe alongside; medians over the rounds, and the bcrypt compare time the
 * login target is computed from.
 */
import type { SpawnedRedis } from '@ncc/testing';
import { CHECKIN_STREAM } from '@ncc/checkins';
import { fmt, log } from './format.js';
import { load, type LoadRequest, type LoadResult } from './load.js';
import type { Started } from './processes.js';
import { type Arm, median, redisCpuSeconds, type RoundsResult, runRounds, unexpectedOf } from './rounds.js';
import { commandCounts, commandDelta, type CommandCounts, roundTripsPerRequest } from './redis-stats.js';
import { BCRYPT_COST, bcryptjs, benchEmail, PASSWORD, type Session } from './users.js';

const PROBE_REQUESTS = 20;

export interface BenchSettings {
  durationS: number;
  warmupS: number;
  connections: number;
  cores: number;
  rounds: number;
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
  /** The baseline plus an accepted checkin's two Redis round trips through ioredis (bench/baseline-server.mjs), as started for this run. */
  floors: Floor[];
}

/** A floor process: `floor`, or `floor-pipelined` (with ioredis auto-pipelining, REDIS_AUTO_PIPELINING=on's floor). */
export interface Floor {
  name: string;
  label: string;
  server: Started;
}

/** One login round: the probe alone, then logins with the probe alongside. */
export interface LoginRound {
  round: number;
  healthIdle: LoadResult;
  login: LoadResult;
  healthDuringLogin: LoadResult;
  /** The same probe during the storm's first second, while every login connection opens at once. */
  healthAtStormStart: LoadResult;
  /** auth's CPU per login (bcrypt threads included, and the light probe alongside). */
  loginCpuUsPerRequest: number;
  loginRedisCpuUsPerRequest: number;
  /** auth's CPU per /healthz with nothing else running. */
  healthIdleCpuUsPerRequest: number;
}

export interface LoginResults {
  rounds: LoginRound[];
  /** Median time of one bcrypt compare (mean of before and after the rounds), this thread. */
  compareMs: number;
  /** Medians over the rounds. */
  loginRps: number;
  loginP50Ms: number;
  loginP99Ms: number;
  loginCpuUsPerRequest: number;
  loginRedisCpuUsPerRequest: number;
  healthIdleP50Ms: number;
  healthIdleP99Ms: number;
  healthDuringP50Ms: number;
  healthDuringP99Ms: number;
  healthIdleCpuUsPerRequest: number;
  healthAtStormStartP99Ms: number;
  healthAtStormStartMaxMs: number;
  /** From a few sequential logins once the queue is empty. */
  redisPerRequest: CommandCounts;
  redisCommandsPerRequest: number;
  roundTrips: number;
  unexpected: number;
}

export interface ScenarioResults {
  /** The baseline and the HTTP scenarios in interleaved rounds. */
  http: RoundsResult;
  /** Redis round trips per request by scenario, from a sequential probe after the rounds. */
  roundTrips: Record<string, number>;
  login: LoginResults | null;
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
  return median(times);
}

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

/** Empty ncc:checkins before a run, so every checkin run starts from the same stream (and long benches never reach its cap). */
export const emptyStream = (redis: SpawnedRedis) => async (): Promise<void> => {
  await redis.client.xtrim(CHECKIN_STREAM, 'MAXLEN', 0);
};

const post = (url: string, body: string, cookie?: string): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body });

/**
 * The login rounds: logins at full load with a light /healthz probe alongside, the same probe without
 * logins before them as the machine's own noise, and the bcrypt compare time the target is computed from.
 */
async function loginRounds(servers: Servers, settings: BenchSettings, hash: string, loginBody: () => string): Promise<LoginResults> {
  const { auth, redis } = servers;
  const { connections, cores, durationS, warmupS, smoke, rounds } = settings;
  const compareBefore = bcryptCompareMs(hash, smoke ? 3 : 7);
  log(`  one bcrypt compare at cost ${BCRYPT_COST}: ${compareBefore.toFixed(1)} ms (median, this thread)`);
  // Queued logins take seconds to drain (50 × one compare ÷ threads): warm up with one connection
  // per core, and after each run wait until a login is answered in about one compare's time again.
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
  const healthProbe = (seconds = durationS) =>
    load({ url: auth.url, connections: 2, durationS: seconds, overallRate: 100, request: () => ({ method: 'GET', path: '/healthz' }) });
  // The probe joins once the storm runs: its first second opens every login connection at the same
  // instant, and the ~1.6 ms of main-thread work per login before bcrypt (parsing, session, body,
  // limiter) then holds the event loop for ~50–100 ms once. That ramp is probed and reported on its own (healthz-at-storm-start).
  // A login run must outlast the queue it builds: `connections` logins on `cores` threads are answered
  // ~connections ÷ cores compares after they start. Shorter (a --smoke second on a loaded machine), the
  // run would end before any login was answered and measure nothing; so at least three such waits.
  const loginS = Math.max(durationS, (3 * Math.ceil(connections / cores) * compareBefore) / 1000);
  if (loginS > durationS) log(`  login runs last ${loginS.toFixed(1)} s: ${connections} connections ÷ ${cores} threads × one compare, three times over`);
  const PROBE_DELAY_S = Math.min(1, loginS / 4);
  if (warmupS > 0) {
    await logins(cores, warmupS);
    await drainLogins();
  }
  const runs: LoginRound[] = [];
  for (let round = 1; round <= rounds; round++) {
    let cpu0 = auth.cpuSeconds();
    const healthIdle = await healthProbe();
    const healthIdleCpu = auth.cpuSeconds() - cpu0;
    cpu0 = auth.cpuSeconds();
    const redisCpu0 = redisCpuSeconds(redis);
    const [login, [healthAtStormStart, healthDuringLogin]] = await Promise.all([
      logins(connections, loginS),
      healthProbe(PROBE_DELAY_S).then(async (start) => [start, await healthProbe(loginS - PROBE_DELAY_S)] as const),
    ]);
    const loginCpu = auth.cpuSeconds() - cpu0;
    const loginRedisCpu = redisCpuSeconds(redis) - redisCpu0;
    await drainLogins();
    runs.push({
      round,
      healthIdle,
      login,
      healthDuringLogin,
      healthAtStormStart,
      loginCpuUsPerRequest: (loginCpu * 1e6) / Math.max(1, login.requests),
      loginRedisCpuUsPerRequest: (loginRedisCpu * 1e6) / Math.max(1, login.requests),
      healthIdleCpuUsPerRequest: (healthIdleCpu * 1e6) / Math.max(1, healthIdle.requests),
    });
    log(
      `  login r${round}: ${fmt(login.rps, 1)} req/s, p99 ${login.p99} ms; /healthz p99 ${healthDuringLogin.p99} ms (alone: ${healthIdle.p99} ms; storm's first ${PROBE_DELAY_S} s: max ${healthAtStormStart.max} ms), statuses ${JSON.stringify(login.statuses)}`,
    );
  }
  // Commands per login from a few sequential logins once the queue is empty: under load the
  // window's edges cut through seconds-long queued logins and would skew a per-request count.
  const before = await commandCounts(redis.client);
  const roundTrips = await roundTripsPerRequest(redis.client, 5, async () => {
    const res = await post(`${auth.url}/login`, loginBody());
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`login probe: expected 200, got ${res.status}`);
  });
  const delta = commandDelta(before, await commandCounts(redis.client));
  const redisPerRequest = Object.fromEntries(Object.entries(delta).map(([cmd, n]) => [cmd, n / 5]));
  const compareAfter = bcryptCompareMs(hash, smoke ? 3 : 7);
  const med = (f: (r: LoginRound) => number): number => median(runs.map(f));
  return {
    rounds: runs,
    compareMs: (compareBefore + compareAfter) / 2,
    loginRps: med((r) => r.login.rps),
    loginP50Ms: med((r) => r.login.p50),
    loginP99Ms: med((r) => r.login.p99),
    loginCpuUsPerRequest: med((r) => r.loginCpuUsPerRequest),
    loginRedisCpuUsPerRequest: med((r) => r.loginRedisCpuUsPerRequest),
    healthIdleP50Ms: med((r) => r.healthIdle.p50),
    healthIdleP99Ms: med((r) => r.healthIdle.p99),
    healthDuringP50Ms: med((r) => r.healthDuringLogin.p50),
    healthDuringP99Ms: med((r) => r.healthDuringLogin.p99),
    healthIdleCpuUsPerRequest: med((r) => r.healthIdleCpuUsPerRequest),
    healthAtStormStartP99Ms: med((r) => r.healthAtStormStart.p99),
    healthAtStormStartMaxMs: med((r) => r.healthAtStormStart.max),
    redisPerRequest,
    redisCommandsPerRequest: sum(redisPerRequest),
    roundTrips,
    unexpected: runs.reduce(
      (n, r) =>
        n + unexpectedOf(r.login, 200) + unexpectedOf(r.healthIdle, 200) + unexpectedOf(r.healthDuringLogin, 200) + unexpectedOf(r.healthAtStormStart, 200),
      0,
    ),
  };
}

/** Every wanted scenario against the started servers, with `sessions` logged in and `hash` the users' password hash. */
export async function runScenarios(
  servers: Servers,
  sessions: Session[],
  hash: string,
  settings: BenchSettings,
  /** More checkin processes (another environment: --variant), each an arm next to `checkin` with the same load. */
  variants: { name: string; server: Started }[] = [],
): Promise<ScenarioResults> {
  const { auth, checkin, baseline, floors, redis } = servers;
  const wanted = (name: string): boolean => !settings.only || settings.only.has(name);
  const session = (c: number) => sessions[c % sessions.length]!;

  const reference: Arm = {
    name: 'baseline',
    label: 'baseline: bare Express JSON POST',
    expected: 202,
    server: baseline,
    request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
  };
  const candidates: (Arm & { probe: () => Promise<Response> })[] = [
    {
      name: 'checkin',
      label: 'checkin, authenticated → 202',
      expected: 202,
      server: checkin,
      request: authenticatedCheckins(sessions),
      beforeRun: emptyStream(redis),
      probe: () => post(`${checkin.url}/api/checkin`, checkinBody(session(0).userId)(), session(0).cookie),
    },
    {
      name: 'checkin-401',
      label: 'checkin, no cookie → 401',
      expected: 401,
      server: checkin,
      request: (c) => ({ method: 'POST', path: '/api/checkin', body: checkinBody(session(c).userId) }),
      probe: () => post(`${checkin.url}/api/checkin`, checkinBody(1)()),
    },
    {
      name: 'me',
      label: 'GET /me with a session',
      expected: 200,
      server: auth,
      request: (c) => ({ method: 'GET', path: '/me', headers: { cookie: session(c).cookie } }),
      probe: () => fetch(`${auth.url}/me`, { headers: { cookie: session(0).cookie } }),
    },
    // The baseline's requests, to the baseline + two round trips (with auto-pipelining too, when started).
    ...floors.map(({ name, label, server }) => ({ ...reference, name, label, server, probe: () => post(`${server.url}/api/checkin`, checkinBody(1)()) })),
  ];
  // Each variant process gets the checkin scenarios that run (checkin, checkin-401), with its name appended.
  const variantArms = variants.flatMap(({ name, server }) =>
    candidates
      .filter((a) => a.server === checkin && wanted(a.name))
      .map((a) => ({
        ...a,
        name: `${a.name}${name.slice('checkin'.length)}`,
        label: `${a.label}, ${name.slice('checkin'.length)}`,
        server,
        probe: () => post(`${server.url}/api/checkin`, checkinBody(session(0).userId)(), a.name === 'checkin' ? session(0).cookie : undefined),
      })),
  );
  const arms = [...candidates.filter((a) => wanted(a.name)), ...variantArms];
  const http = await runRounds({
    redis,
    reference,
    arms,
    rounds: settings.rounds,
    warmupS: settings.warmupS,
    durationS: settings.durationS,
    connections: settings.connections,
    title: 'http',
  });
  const roundTrips: Record<string, number> = {};
  for (const arm of [{ ...reference, probe: () => post(`${baseline.url}/api/checkin`, checkinBody(1)()) }, ...arms]) {
    roundTrips[arm.name] = await roundTripsPerRequest(redis.client, PROBE_REQUESTS, async () => {
      const res = await arm.probe();
      await res.arrayBuffer();
      if (res.status !== arm.expected) throw new Error(`${arm.name} probe: expected ${arm.expected}, got ${res.status}`);
    });
  }

  let loginUser = 0;
  const loginBody = (): string => {
    loginUser = (loginUser % settings.users) + 1;
    return JSON.stringify({ email: benchEmail(loginUser), password: PASSWORD });
  };
  const login = wanted('login') ? await loginRounds(servers, settings, hash, loginBody) : null;
  return { http, roundTrips, login };
}
