/**
 * `pnpm bench`: the services in production mode on a spawned redis-server, loaded with autocannon,
 * compared with a bare Express JSON endpoint measured in the same run, as interleaved rounds (baseline,
 * checkin, checkin-401, me, floor, baseline, …; bench/lib/rounds.ts) judged on medians; the floor is the
 * baseline plus an accepted checkin's two Redis round trips and nothing else (bench/baseline-server.mjs). Then the login rounds
 * (/healthz alone, logins with /healthz alongside). Prints one table, writes
 * bench/results/latest.json, marks each target met or missed. Then the observability overhead
 * scenario (bench/lib/observability.ts): the checkin load against checkin with metrics off, metrics
 * on, and metrics + tracing at 100 %, in interleaved rounds. Then the checkin processor scenario
 * (bench/lib/processor.ts): drain throughput with 1 and 2 processes, Redis commands per processed
 * entry, 202 → applied latency; reported, no targets.
 *
 *   pnpm bench                       10 s per scenario against dist/ (pnpm bench builds first)
 *   pnpm bench --duration 20         longer runs
 *   pnpm bench --cluster 2           each service as 2 node:cluster workers
 *   pnpm bench --cpu-prof            also write V8 CPU profiles of both services to bench/results/profiles/
 *   pnpm bench --only checkin,me     a subset (the baseline always runs)
 *   pnpm bench --only checkin,floor,floor-pipelined --variant REDIS_AUTO_PIPELINING=on
 *                                    also the floor with auto-pipelining (only when named)
 *   pnpm bench --only processor      the checkin processor scenario (and the baseline)
 *   pnpm bench --only scale          checkin as 1, 2 and 4 node:cluster processes (and the baseline)
 *   pnpm bench --only observability  metrics/tracing overhead: checkin with METRICS_PORT=off, metrics on, metrics + tracing (and the baseline)
 *   --rounds 5                       interleaved rounds of every scenario (default 3; 1 with --smoke)
 *   --variant REDIS_AUTO_PIPELINING=on   one more checkin process in the HTTP rounds, with that environment
 *                                    on top (A=1,B=2 for several; repeat --variant for more arms): a lever measured
 *                                    against the default in the same rounds
 *   OTEL_EXPORTER_OTLP_PROTOCOL=http/json pnpm bench --only observability   other OTEL_* variables reach the traced checkin
 *   pnpm bench --duration 1 --smoke  what the test suite runs: statuses checked, targets not enforced
 *   --source                         run the services from TypeScript source (tsx) instead of dist/
 *   --node-flags='--max-semi-space-size=64'   extra node flags for the services (the processor too)
 *   PROCESSOR_BATCH_SIZE=500 pnpm bench --only processor   PROCESSOR_* variables reach the processors
 *
 * Exit code 1 when any response had an unexpected status (or a connection error/timeout), and — unless
 * --smoke — when a target is missed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, spawnRedis, type SpawnedRedis } from '@ncc/testing';
import { log } from './lib/format.js';
import { clustered, type Mode, ROOT, serviceArgs, type Started, startProcess } from './lib/processes.js';
import { type ProcessorResults, runProcessorScenario } from './lib/processor.js';
import { jsonReport, scenarioTable, textReport, unexpectedResponses } from './lib/report.js';
import { type ObservabilityResults, runObservabilityScenario } from './lib/observability.js';
import { runScaleScenario, type ScaleResults } from './lib/scale.js';
import { type BenchSettings, type Floor, runScenarios } from './lib/scenarios.js';
import { evaluateTargets } from './lib/targets.js';
import { logIn, seedBenchUsers } from './lib/users.js';

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
    /** Interleaved rounds of every scenario (HTTP, login, observability). */
    rounds: { type: 'string' },
    /** An extra checkin arm in the HTTP rounds with this environment on top, e.g. --variant REDIS_AUTO_PIPELINING=on (repeatable). */
    variant: { type: 'string', multiple: true },
  },
});

const durationS = Number(args.duration);
const warmupS = args.warmup !== undefined ? Number(args.warmup) : args.smoke ? 0.5 : Math.min(3, durationS);
const connections = Number(args.connections);
const workers = Number(args.cluster);
const rounds = Number(args.rounds ?? (args.smoke ? 1 : 3));
const mode: Mode = args.source ? 'source' : 'dist';
for (const [name, value] of [
  ['duration', durationS],
  ['warmup', warmupS],
  ['connections', connections],
  ['cluster', workers],
  ['rounds', rounds],
] as const) {
  if (!Number.isFinite(value) || value < 0 || (name !== 'warmup' && value === 0)) throw new Error(`--${name} must be a positive number`);
}
if (!Number.isInteger(rounds)) throw new Error('--rounds must be a whole number');

const SECRET = 'bench-session-secret-0123456789abcdefghijklmnop';
const USERS = 250;
const settings: BenchSettings = {
  durationS,
  warmupS,
  connections,
  cores: availableParallelism(),
  rounds,
  smoke: args.smoke,
  only: args.only ? new Set(args.only.split(',')) : undefined,
  users: USERS,
};

const profileDir = join(ROOT, 'bench/results/profiles');
/** Extra node flags for every service process (auth, checkin, the processors). */
const nodeFlags = [...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...(args['node-flags']?.split(/\s+/).filter(Boolean) ?? [])];

/** The environment of the auth and checkin processes. */
function serviceEnv(redis: SpawnedRedis): Record<string, string> {
  const passThrough = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => /^(LOGIN_|RATE_LIMIT|CHECKIN_)/.test(k) && v !== undefined)) as Record<
    string,
    string
  >;
  return {
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
}

/** A checkin process (as `workers` cluster workers when asked) on a free port, `env` on top of the service env. */
async function startCheckin(redis: SpawnedRedis, name: string, env: Record<string, string> = {}, workerCount = workers): Promise<Started> {
  const port = await freePort();
  return startProcess(
    name,
    clustered([...nodeFlags, ...serviceArgs('checkin', mode)], workerCount),
    { ...serviceEnv(redis), ...env, CHECKIN_PORT: String(port) },
    port,
  );
}

/**
 * The floors (bench/baseline-server.mjs with a Redis URL): each runs when --only names it or, without
 * --only, unless it is opt-in — the pipelined one runs only when named (--only …,floor-pipelined).
 */
const FLOORS: (Omit<Floor, 'server'> & { extraArgs: string[]; optIn: boolean })[] = [
  { name: 'floor', label: 'floor: baseline + GET + EVALSHA through ioredis', extraArgs: [], optIn: false },
  { name: 'floor-pipelined', label: 'floor with ioredis auto-pipelining', extraArgs: ['pipelined'], optIn: true },
];

/** auth, checkin (each as `workers` cluster workers when asked), the baseline and the wanted floors, on free ports. */
async function startServers(redis: SpawnedRedis, processes: Started[]): Promise<{ auth: Started; checkin: Started; baseline: Started; floors: Floor[] }> {
  const [authPort, basePort] = await Promise.all([freePort(), freePort()]);
  if (args['cpu-prof']) mkdirSync(profileDir, { recursive: true });
  const startFloor = async ({ name, label, extraArgs }: (typeof FLOORS)[number]): Promise<Floor> => {
    const port = await freePort();
    const server = await startProcess(name, ['bench/baseline-server.mjs', String(port), redis.url, ...extraArgs], {}, port);
    processes.push(server);
    return { name, label, server };
  };
  const [started, floors] = await Promise.all([
    Promise.all([
      startProcess('auth', clustered([...nodeFlags, ...serviceArgs('auth', mode)], workers), { ...serviceEnv(redis), AUTH_PORT: String(authPort) }, authPort),
      startCheckin(redis, 'checkin'),
      startProcess('baseline', ['bench/baseline-server.mjs', String(basePort)], {}, basePort),
    ]),
    Promise.all(FLOORS.filter((f) => (settings.only ? settings.only.has(f.name) : !f.optIn)).map(startFloor)),
  ]);
  processes.push(...started);
  const [auth, checkin, baseline] = started;
  return { auth, checkin, baseline, floors };
}

async function main(): Promise<number> {
  const started = Date.now();
  const loadBefore = loadavg();
  log(
    `bench: ${durationS}s per scenario, ${connections} connections, services from ${mode}${workers > 1 ? `, ${workers} cluster workers each` : ''}, ${settings.cores} cores`,
  );
  const redis: SpawnedRedis = await spawnRedis();
  const processes: Started[] = [];
  try {
    const hash = await seedBenchUsers(redis.url, USERS);
    const servers = { redis, ...(await startServers(redis, processes)) };
    // One session per connection (distinct users, as real traffic would be).
    const sessions = await logIn(servers.auth.url, Math.min(connections, USERS));

    const variants = await Promise.all(
      (args.variant ?? []).map(async (spec) => {
        const env = Object.fromEntries(
          spec.split(',').map((pair) => {
            const at = pair.indexOf('=');
            if (at < 1) throw new Error(`--variant ${spec}: expected NAME=VALUE[,NAME=VALUE]`);
            return [pair.slice(0, at), pair.slice(at + 1)];
          }),
        );
        const server = await startCheckin(redis, `checkin[${spec}]`, env);
        processes.push(server);
        return { name: `checkin[${spec}]`, server };
      }),
    );
    const scenarios = await runScenarios(servers, sessions, hash, settings, variants);
    const common = { redis, sessions, durationS, warmupS, connections, rounds };
    const observability: ObservabilityResults | null =
      !settings.only || settings.only.has('observability')
        ? await runObservabilityScenario({ ...common, smoke: args.smoke, startCheckin: (name, env) => startCheckin(redis, name, env) })
        : null;
    const scale: ScaleResults | null =
      !settings.only || settings.only.has('scale')
        ? await runScaleScenario({ ...common, cores: settings.cores, startCheckin: (name, n) => startCheckin(redis, name, {}, n) })
        : null;
    // Last, so its background processing never overlaps the HTTP scenarios (it resets the stream they filled).
    const processor: ProcessorResults | null =
      !settings.only || settings.only.has('processor')
        ? await runProcessorScenario({ redis, checkinUrl: servers.checkin.url, sessions, mode, nodeFlags, smoke: args.smoke })
        : null;
    const targets = evaluateTargets(scenarios, settings.cores, observability);

    const table = scenarioTable(scenarios);
    process.stdout.write(`${textReport(scenarios, targets, table, processor, observability, scale)}\n`);
    const report = jsonReport(
      {
        started,
        cores: settings.cores,
        loadAverageBefore: loadBefore.map((l) => Number(l.toFixed(2))),
        loadAverageAfter: loadavg().map((l) => Number(l.toFixed(2))),
        options: { durationS, warmupS, connections, clusterWorkers: workers, servicesFrom: mode, smoke: args.smoke, rounds },
      },
      scenarios,
      targets,
      table,
      processor,
      observability,
      scale,
    );
    const outPath = resolve(args.out);
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${outPath} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    if (unexpectedResponses(scenarios, processor, observability, scale) > 0) return 1;
    const missed = targets.targets.filter((t) => !t.met);
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
