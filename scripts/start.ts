/**
 * `pnpm start`: everything a newcomer needs, in one command.
 *
 * 1. Redis: REDIS_URL if a Redis answers there; otherwise a redis-server from PATH on NCC_REDIS_PORT
 *    (6379) with append-only data in NCC_DATA_DIR (.data/redis, git-ignored). Without redis-server on
 *    PATH it is installed first (scripts/install-system-deps.sh: apt-get as root or with sudo, brew);
 *    when that is not possible, exit 1 naming both fixes.
 * 2. The demo users, unless user 77 already exists (the same idempotent seed as `pnpm seed`).
 * 3. auth, checkin and the checkin processor as child processes (exactly what `pnpm auth` /
 *    `pnpm checkin` / `pnpm processor` run), their lines prefixed with their names, until all three
 *    answer /readyz; then the gateway (`pnpm gateway`: the web page, auth and checkin on one origin,
 *    GATEWAY_PORT) until it answers /gateway/healthz; then the next steps.
 * 4. A service that exits on its own once it was ready (a crash: exit 1 after an uncaught error) is
 *    restarted on the same port after 0.5 s, 1 s, 2 s, … (scripts/start/supervisor.ts); after more than
 *    NCC_RESTART_LIMIT (5) crashes within 60 s everything is stopped and the script exits 1. A service
 *    that exits before it was ever ready is a start-up failure: everything is stopped, exit 1.
 * 5. Ctrl-C / SIGTERM: stop the services, then the redis-server if (and only if) it was started here,
 *    each gracefully, and exit 0.
 */
import { relative } from 'node:path';
import { ConfigError, redactUrl } from '@ncc/service-kit';
import { complain, launch, type Managed, say } from './start/children.js';
import { loadStartConfig, ROOT, type StartConfig } from './start/config.js';
import { installRedisServer, launchLocalRedis, onPath, portTaken, probeRedis, RedisServerMissingError, waitForLocalRedis } from './start/redis.js';
import { DEMO_USER_ID, seedDemoUsersIfMissing } from './start/seed.js';
import { type RestartPolicy, restartPolicyFromEnv, Supervisor } from './start/supervisor.js';

const SERVICE_STOP_TIMEOUT_MS = 15_000;
const REDIS_STOP_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 90_000;

/** Raised for a problem the user can fix: printed as is, no stack, exit 1. */
class StartError extends Error {}

let config: StartConfig;
let restartPolicy: RestartPolicy;
try {
  config = loadStartConfig(process.env);
  restartPolicy = restartPolicyFromEnv(process.env);
} catch (err) {
  complain(err instanceof ConfigError ? err.message : String(err));
  process.exit(1);
}

const services: Supervisor[] = [];
let redisServer: Managed | undefined;
let stopping = false;

/** Stop what this script started — services first (they finish in-flight requests against Redis), then Redis. */
async function stopAll(): Promise<void> {
  await Promise.all(services.map((s) => s.stop('SIGTERM', SERVICE_STOP_TIMEOUT_MS)));
  // SIGTERM makes redis-server flush the append-only file and exit cleanly.
  if (redisServer) await redisServer.stop('SIGTERM', REDIS_STOP_TIMEOUT_MS);
}

async function shutdown(reason: string, code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (!services.some((s) => s.running()) && !redisServer?.running()) process.exit(code);
    const what = services
      .filter((s) => s.running())
      .map((s) => s.name)
      .sort();
    if (redisServer?.running()) what.push('the redis-server started here');
    say(`${reason}: stopping ${what.length > 0 ? what.join(', ') : 'nothing (all stopped already)'}…`);
    await stopAll();
    say(redisServer ? `Stopped. Data kept in ${shown(config.NCC_DATA_DIR)}.` : 'Stopped.');
    process.exit(code);
  }
  // A second signal while stopping: the stop is already under way (with its own time limits).
  return new Promise<never>(() => undefined);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => void shutdown(`${signal} received`, 0));
}
// Last resort if this script dies of an error: never leave detached children behind.
process.on('exit', () => {
  for (const p of [...services, ...(redisServer ? [redisServer] : [])]) if (p.running()) p.child.kill('SIGKILL');
});

function shown(path: string): string {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') || rel === '' ? path : rel;
}

const REDIS_MISSING_FIXES =
  `Fix one of:\n` +
  `  - install redis-server (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), then run pnpm start again;\n` +
  `  - or run Redis in Docker: docker compose up -d redis  (then pnpm start uses it at the default REDIS_URL, redis://127.0.0.1:6379).`;

/** `installed`: redis-server was installed a moment ago (so it is not tried again). */
async function chooseRedis(installed = false): Promise<string> {
  const probe = await probeRedis(config.REDIS_URL);
  if (probe.ok) {
    say(
      installed
        ? `The redis-server package started its own Redis at ${redactUrl(config.REDIS_URL)} (REDIS_URL): using it; it is not stopped on exit.`
        : `Using the Redis that answers at ${redactUrl(config.REDIS_URL)} (REDIS_URL); it is not stopped on exit.`,
    );
    return config.REDIS_URL;
  }
  if (!installed) say(`No Redis answered at ${redactUrl(config.REDIS_URL)} (${probe.reason}).`);
  const port = config.NCC_REDIS_PORT;
  if (await portTaken(port)) {
    throw new StartError(
      `Cannot start a local redis-server either: port ${port} is already in use by something that did not answer as Redis at REDIS_URL.\n` +
        `Fix one of:\n` +
        `  - point REDIS_URL at a Redis that answers (with its password, e.g. redis://:password@127.0.0.1:${port});\n` +
        `  - or start a local one on another port: NCC_REDIS_PORT=6380 pnpm start`,
    );
  }
  if (!installed && !onPath('redis-server')) {
    say('redis-server is not on PATH: installing it (bash scripts/install-system-deps.sh redis-server)…');
    if (!(await installRedisServer(say)) || !onPath('redis-server')) {
      throw new StartError(
        `No Redis answers at ${redactUrl(config.REDIS_URL)} (REDIS_URL), there is no redis-server on PATH to start one, and it could not be installed (see the line above).\n` +
          REDIS_MISSING_FIXES,
      );
    }
    return chooseRedis(true);
  }
  try {
    say(`Starting redis-server on port ${port} (append-only data in ${shown(config.NCC_DATA_DIR)})…`);
    redisServer = launchLocalRedis(port, config.NCC_DATA_DIR);
    await waitForLocalRedis(redisServer, port);
  } catch (err) {
    if (err instanceof RedisServerMissingError) {
      throw new StartError(
        `No Redis answers at ${redactUrl(config.REDIS_URL)} (REDIS_URL) and there is no redis-server on PATH to start one.\n${REDIS_MISSING_FIXES}`,
      );
    }
    throw new StartError(`Could not start redis-server: ${err instanceof Error ? err.message : String(err)}`);
  }
  say(`redis-server started (pid ${redisServer.pid}) on port ${port}.`);
  void redisServer.exited.then((code) => {
    if (!stopping) void shutdown(`redis-server exited (${code})`, 1);
  });
  return `redis://127.0.0.1:${port}`;
}

/** The processes `pnpm start` supervises: each one is `services/<name>/src/main.ts`, as `pnpm <name>` runs it. */
type ServiceName = 'auth' | 'checkin' | 'processor' | 'gateway';
/** The three that use Redis and serve metrics (the gateway does neither). */
type RedisServiceName = Exclude<ServiceName, 'gateway'>;

function portOf(name: ServiceName): number {
  return { auth: config.AUTH_PORT, checkin: config.CHECKIN_PORT, processor: config.PROCESSOR_PORT, gateway: config.GATEWAY_PORT }[name];
}

function metricsPortOf(name: RedisServiceName): number | 'off' {
  return { auth: config.AUTH_METRICS_PORT, checkin: config.CHECKIN_METRICS_PORT, processor: config.PROCESSOR_METRICS_PORT }[name];
}

/** Where a process answers once it can serve: the services once Redis answers; the gateway, which has no Redis to wait for, once it listens. */
function readyPathOf(name: ServiceName): string {
  return name === 'gateway' ? '/gateway/healthz' : '/readyz';
}

/** The address the processes here are reached at: HOST, or loopback when HOST means every interface. */
function reachableHost(): string {
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  return host.includes(':') ? `[${host}]` : host;
}

function envOf(name: ServiceName, redisUrl: string): NodeJS.ProcessEnv {
  if (name === 'gateway') {
    return {
      ...process.env,
      HOST: config.HOST,
      GATEWAY_PORT: String(config.GATEWAY_PORT),
      AUTH_URL: `http://${reachableHost()}:${config.AUTH_PORT}`,
      CHECKIN_URL: `http://${reachableHost()}:${config.CHECKIN_PORT}`,
    };
  }
  // TRUST_PROXY stays at the services' default, 0, although the gateway is a proxy in front of them:
  // their own ports stay open on the same loopback as the gateway (for Postman and curl), so trusting
  // one proxy hop would let any direct client choose the X-Forwarded-For that the audit log and the
  // per-address limits use. Nothing needs it: the gateway keeps the browser's Host, so the cross-site
  // guard sees the page's origin as the service's own anyway, and every client here is local.
  return {
    ...process.env,
    REDIS_URL: redisUrl,
    HOST: config.HOST,
    AUTH_PORT: String(config.AUTH_PORT),
    CHECKIN_PORT: String(config.CHECKIN_PORT),
    PROCESSOR_PORT: String(config.PROCESSOR_PORT),
    METRICS_PORT: String(metricsPortOf(name)),
  };
}

async function startService(name: ServiceName, redisUrl: string): Promise<Supervisor> {
  const service = new Supervisor({
    name,
    launch: () =>
      launch(name, process.execPath, ['--conditions=ncc-source', '--import', 'tsx', `services/${name}/src/main.ts`], {
        cwd: ROOT,
        env: envOf(name, redisUrl),
      }),
    policy: restartPolicy,
    report: complain,
    mayRestart: () => !stopping,
    onRestarted: (process, attempt) => {
      say(`${name} restarted (pid ${process.pid}; attempt ${attempt} of ${restartPolicy.maxRestarts}).`);
      void waitReady(process, name).then(
        () => say(`${name} is ready again.`),
        // Exited again: the supervisor has said so. Still running but not ready: say that.
        (err: unknown) => {
          if (process.running() && !stopping) complain(err instanceof Error ? err.message : String(err));
        },
      );
    },
    // A crash loop: restarting it again is no use, and half a system is no use either.
    onGiveUp: () => void shutdown(`${name} keeps crashing`, 1),
  });
  services.push(service);
  await service.current.started;
  say(`${name} started (pid ${service.pid}).`);
  // Until it is ready (and supervised), a service that exits is a start-up failure: everything stops.
  void service.current.exited.then((code) => {
    if (!stopping && !service.supervised()) void shutdown(`${name} exited (${code})`, 1);
  });
  return service;
}

async function waitReady(service: Pick<Managed, 'running'>, name: ServiceName): Promise<void> {
  const url = `http://${reachableHost()}:${portOf(name)}${readyPathOf(name)}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!service.running()) throw new StartError(`${name} exited before it was ready; see its [${name}] lines above.`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new StartError(`${name} was not ready within ${READY_TIMEOUT_MS / 1000} s (${url}).`);
}

/** Ready once: from then on a crash of the service means a restart, not the end of `pnpm start`. */
async function readyThenSupervise(service: Supervisor): Promise<void> {
  await waitReady(service, service.name as ServiceName);
  service.supervise();
}

/** Where each service's Prometheus metrics are (none when all are off). */
function metricsLines(): string[] {
  const urls = (['auth', 'checkin', 'processor'] as const).flatMap((name) => {
    const port = metricsPortOf(name);
    return port === 'off' ? [] : [`${name} http://localhost:${port}/metrics`];
  });
  return urls.length === 0 ? [] : [`  Metrics: ${urls.join('   ')}`];
}

function nextSteps(redisUrl: string): string {
  const auth = `http://localhost:${config.AUTH_PORT}`;
  const checkin = `http://localhost:${config.CHECKIN_PORT}`;
  const processor = `http://localhost:${config.PROCESSOR_PORT}`;
  const gateway = `http://localhost:${config.GATEWAY_PORT}`;
  const redisPort = new URL(redisUrl).port || '6379';
  const cli = `redis-cli${redisPort === '6379' ? '' : ` -p ${redisPort}`}`;
  const defaultPorts = config.AUTH_PORT === 8083 && config.CHECKIN_PORT === 8082;
  return [
    `Ready: auth ${auth}, checkin ${checkin}, Redis ${redactUrl(redisUrl)}${redisServer ? ` (started here, data in ${shown(config.NCC_DATA_DIR)})` : ''}, processor ${processor} (health only), gateway ${gateway} (the page, auth and checkin on one origin).`,
    '',
    'Next steps:',
    `  Browser: Open ${gateway} in a browser and log in as al.appelhof@example.com / secret123.`,
    '  Postman: Import -> postman/ncc.postman_collection.json and postman/local.postman_environment.json,',
    `           select the "ncc local" environment, then Run collection.${defaultPorts ? '' : ` (Set authUrl=${auth} and checkinUrl=${checkin} in it first.)`}`,
    '  curl:    log in as the demo user, keeping the session cookie in cookies.txt:',
    `           curl -i -c cookies.txt -H 'Content-Type: application/json' -d '{"email":"al.appelhof@example.com","password":"secret123"}' ${auth}/login`,
    `           curl -i -b cookies.txt -H 'Content-Type: application/json' -d '{"userId":${DEMO_USER_ID},"locationId":1,"starRating":5}' ${checkin}/api/checkin`,
    "  Stats:   the processor counts each checkin a moment later (JSON numbers; the user's own stats only):",
    `           curl -b cookies.txt ${checkin}/api/users/${DEMO_USER_ID}/stats`,
    `           curl -b cookies.txt ${checkin}/api/locations/1/stats`,
    `  Redis:   ${cli} --scan --pattern 'ncc:session:*'   |   ${cli} xlen ncc:checkins`,
    `           ${cli} hgetall ncc:user:${DEMO_USER_ID}   |   ${cli} hgetall ncc:location:1`,
    ...metricsLines(),
    '',
    `Press Ctrl-C to stop everything started here${redisServer ? '' : ' (the Redis at REDIS_URL keeps running)'}.`,
  ].join('\n');
}

try {
  const redisUrl = await chooseRedis();
  // Seeding (seconds of bcrypt on a fresh Redis) overlaps with the services' start-up.
  const seeded = seedDemoUsersIfMissing(redisUrl, config.NCC_SEED_FILE);
  seeded.catch(() => undefined); // awaited below; this only keeps an early failure elsewhere from leaving it unhandled
  const started = await Promise.all((['auth', 'checkin', 'processor'] as const).map((name) => startService(name, redisUrl)));
  say(await seeded);
  await Promise.all(started.map(readyThenSupervise));
  // The gateway last: once it answers, the page it serves finds auth and checkin ready behind it.
  if (!stopping) await readyThenSupervise(await startService('gateway', redisUrl));
  if (!stopping) say(nextSteps(redisUrl));
} catch (err) {
  if (!stopping) {
    complain(err instanceof StartError ? err.message : `Start-up failed: ${err instanceof Error ? err.message : String(err)}`);
    await shutdown('Start-up failed', 1);
  }
}
