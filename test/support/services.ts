/**
 * Start the real services for tests: in-process on a free port (fast, same code as main.ts minus the
 * process handlers) or as child processes (for signals, start-up and restarts). Both over real HTTP
 * against a real redis-server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import {
  baseEnvSchema,
  type BaseConfig,
  closeRedis,
  createRedisClient,
  loadConfig,
  type RedisClient,
  type RunningServer,
  type ServiceApp,
  ServiceMetrics,
  startServer,
  waitForRedis,
} from '@ncc/service-kit';
import { captureLogs, type CapturedLogs, cookiePair, freePort, postJson, type SpawnedRedis, spawnRedis, type SpawnRedisOptions } from '@ncc/testing';
import { createAuthApp, createPasswordHasher } from '../../services/auth/src/app.js';
import { type AuthConfig, authEnvSchema } from '../../services/auth/src/config.js';
import { UsersRepository } from '../../services/auth/src/data-access/users-repository.js';
import hashInThisThread from '../../services/auth/src/domain/bcrypt-worker.js';
import { type PasswordHasher } from '../../services/auth/src/domain/passwords.js';
import { createCheckinApp } from '../../services/checkin/src/app.js';
import { checkinEnvSchema } from '../../services/checkin/src/config.js';
import { createProcessorApp, type ProcessorApp } from '../../services/processor/src/app.js';
import { processorEnvSchema } from '../../services/processor/src/config.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEST_SECRET = 'test-secret-test-secret-test-secret-0001';
export const DEMO = { id: 77, email: 'al.appelhof@example.com', password: 'secret123', firstName: 'Al', lastName: 'Appelhof' };

export interface StartedService {
  url: string;
  port: number;
  logs: CapturedLogs;
  redis: RedisClient;
  metrics: ServiceMetrics;
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

async function startInProcess<A extends ServiceApp>(
  name: string,
  env: Env,
  build: (logs: CapturedLogs, redis: RedisClient, metrics: ServiceMetrics) => A | Promise<A>,
  redisConfig: BaseConfig,
): Promise<StartedService & { app: A }> {
  const logs = captureLogs(name);
  // The parsed config decides the mode (REDIS_URL, or REDIS_CLUSTER_NODES / REDIS_SENTINELS in env).
  const redis = createRedisClient(
    { ...redisConfig, REDIS_COMMAND_TIMEOUT_MS: Number(env['REDIS_COMMAND_TIMEOUT_MS'] ?? 1000), REDIS_CONNECT_TIMEOUT_MS: 1000 },
    logs.logger,
  );
  await waitForRedis(redis, 10_000);
  // As runService makes them: measured, with ncc_redis_up; read with `metrics.scrape()`.
  const metrics = new ServiceMetrics(true);
  metrics.watchRedis(redis, { up: true });
  const service = await build(logs, redis, metrics);
  const server: RunningServer = await startServer(service.app, 0, '127.0.0.1', redisConfig);
  return {
    app: service,
    metrics,
    url: server.url,
    port: server.port,
    logs,
    redis,
    close: async () => {
      // As runService stops: stop accepting, end the endless responses, drain, then the app and Redis.
      const drained = server.close(2000);
      service.beginShutdown?.();
      await drained;
      await service.close();
      await closeRedis(redis);
    },
  };
}

/**
 * The auth app in this process on a free port. For Redis Cluster / Sentinel pass '' as redisUrl and
 * REDIS_CLUSTER_NODES or REDIS_SENTINELS + REDIS_SENTINEL_NAME in env.
 */
export function startAuth(redisUrl: string, env: Env = {}, options: { hasher?: (config: AuthConfig) => PasswordHasher } = {}): Promise<StartedService> {
  const config = loadConfig(authEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', ...env, REDIS_URL: redisUrl });
  // The production hasher (worker pool, overload → 503) unless a test wraps it, e.g. to count compares.
  const hasher = (options.hasher ?? createPasswordHasher)(config);
  return startInProcess('auth', env, (logs, redis, metrics) => createAuthApp({ config, logger: logs.logger, redis, metrics, hasher }), config);
}

/** The checkin app in this process on a free port (Cluster / Sentinel: as for startAuth). */
export function startCheckin(redisUrl: string, env: Env = {}): Promise<StartedService> {
  const config = loadConfig(checkinEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', ...env, REDIS_URL: redisUrl });
  return startInProcess('checkin', env, (logs, redis, metrics) => createCheckinApp({ config, logger: logs.logger, redis, metrics }), config);
}

export type StartedProcessor = StartedService & { app: ProcessorApp };

/**
 * The checkin processor in this process (Cluster / Sentinel: as for startAuth). Its blocking reader
 * is its own connection, as in production. A programmer error inside its loop fails the test run.
 */
export function startProcessor(redisUrl: string, env: Env = {}): Promise<StartedProcessor> {
  const config = loadConfig(processorEnvSchema, { NODE_ENV: 'test', ...env, REDIS_URL: redisUrl });
  return startInProcess('processor', env, (logs, redis, metrics) => createProcessorApp({ config, logger: logs.logger, redis, metrics }), config);
}

export interface TestUser {
  id: number;
  email: string;
  password: string;
  firstName?: string;
  lastName?: string;
}

/**
 * Write users straight through the repository. `target` is a REDIS_URL, or Redis env keys such as
 * `{ REDIS_CLUSTER_NODES: '127.0.0.1:7000,…' }`. The hashes cost 10, as in production, unless `rounds`
 * says otherwise: a cheaper hash makes each of that user's login compares cheaper, which suits a test
 * that logs in hundreds of times to test sessions — never one about passwords, timing or login limits.
 */
export async function createUsers(target: string | Env, users: TestUser[], options: { rounds?: number } = {}): Promise<void> {
  const logs = captureLogs('seed');
  const redisConfig = loadConfig(baseEnvSchema, typeof target === 'string' ? { REDIS_URL: target } : target);
  const redis = createRedisClient({ ...redisConfig, REDIS_COMMAND_TIMEOUT_MS: 2000, REDIS_CONNECT_TIMEOUT_MS: 1000 }, logs.logger);
  await waitForRedis(redis, 5000);
  const repository = new UsersRepository(redis);
  // The pool's own hash function, on this thread: a worker pool (with tsx loaded into each thread)
  // would cost more to start than the few hashes a test needs.
  const hash = (password: string): string => hashInThisThread({ op: 'hash', password, rounds: options.rounds ?? 10 }) as string;
  try {
    await Promise.all(
      users.map((u) =>
        repository.save({ id: u.id, email: u.email, firstName: u.firstName ?? 'Test', lastName: u.lastName ?? `User${u.id}`, passwordHash: hash(u.password) }),
      ),
    );
  } finally {
    await closeRedis(redis);
  }
}

export interface CountingHasher extends PasswordHasher {
  /** Calls so far, by method. */
  readonly calls: { hash: number; verify: number; verifyDummy: number };
  /** Password compares so far: verify() plus verifyDummy(), each one bcrypt compare. */
  compares(): number;
}

/** Does exactly what `inner` does (a decorator, not a fake) and counts the calls. */
export function countingHasher(inner: PasswordHasher): CountingHasher {
  const calls = { hash: 0, verify: 0, verifyDummy: 0 };
  return {
    calls,
    compares: () => calls.verify + calls.verifyDummy,
    hash: (password) => {
      calls.hash++;
      return inner.hash(password);
    },
    verify: (password, hash) => {
      calls.verify++;
      return inner.verify(password, hash);
    },
    verifyDummy: (password) => {
      calls.verifyDummy++;
      return inner.verifyDummy(password);
    },
    warmUp: async () => inner.warmUp?.(),
    close: () => inner.close(),
  };
}

export interface StackOptions {
  /** Created before the services start (default: the demo user). */
  users?: TestUser[];
  /** bcrypt cost of those users' hashes (default 10; see createUsers). */
  rounds?: number;
  /** Env of every service of the stack; authEnv / checkinEnv add to it for one kind. */
  env?: Env;
  authEnv?: Env;
  checkinEnv?: Env;
  processorEnv?: Env;
  /** Instances of each to start at once (default one auth, one checkin and no processor; 0 for none). */
  auths?: number;
  checkins?: number;
  processors?: number;
  /** The password hasher of each auth instance (startAuth's option), e.g. a countingHasher. */
  hasher?: (config: AuthConfig) => PasswordHasher;
  redis?: SpawnRedisOptions;
}

export interface Stack {
  redis: SpawnedRedis;
  /** The first auth / checkin instance (an error if the stack started none). */
  readonly auth: StartedService;
  readonly checkin: StartedService;
  auths: StartedService[];
  checkins: StartedService[];
  processors: StartedProcessor[];
  /** One more service on the stack's Redis, with the stack's env plus `env`; close() closes it too. */
  start(kind: 'auth' | 'checkin', env?: Env, options?: Pick<StackOptions, 'hasher'>): Promise<StartedService>;
  startProcessor(env?: Env): Promise<StartedProcessor>;
  /** Every service started so far, then Redis. */
  close(): Promise<void>;
}

/** The usual arrangement: a spawned Redis, some users, and the services in-process on it. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const redis = await spawnRedis(options.redis);
  const started: StartedService[] = [];
  /** A test may close (restart) a service itself; the stack's close() then does not close it again. */
  const track = <S extends StartedService>(service: S): S => {
    let closed: Promise<void> | undefined;
    const once = { ...service, close: () => (closed ??= service.close()) };
    started.push(once);
    return once;
  };
  const start = async (kind: 'auth' | 'checkin', env: Env = {}, own: Pick<StackOptions, 'hasher'> = {}): Promise<StartedService> => {
    const merged = { ...options.env, ...(kind === 'auth' ? options.authEnv : options.checkinEnv), ...env };
    const hasher = own.hasher ?? options.hasher;
    return track(await (kind === 'auth' ? startAuth(redis.url, merged, hasher ? { hasher } : {}) : startCheckin(redis.url, merged)));
  };
  const processor = async (env: Env = {}): Promise<StartedProcessor> =>
    track(await startProcessor(redis.url, { ...options.env, ...options.processorEnv, ...env }));
  const close = async (): Promise<void> => {
    await Promise.all(started.splice(0).map((s) => s.close()));
    await redis.stop();
  };
  let auths: StartedService[];
  let checkins: StartedService[];
  let processors: StartedProcessor[];
  try {
    await createUsers(redis.url, options.users ?? [DEMO], options.rounds === undefined ? {} : { rounds: options.rounds });
    [auths, checkins, processors] = await Promise.all([
      Promise.all(Array.from({ length: options.auths ?? 1 }, () => start('auth'))),
      Promise.all(Array.from({ length: options.checkins ?? 1 }, () => start('checkin'))),
      Promise.all(Array.from({ length: options.processors ?? 0 }, () => processor())),
    ]);
  } catch (err) {
    await close();
    throw err;
  }
  const first = (list: StartedService[], kind: string): StartedService => {
    if (!list[0]) throw new Error(`this stack started no ${kind} service`);
    return list[0];
  };
  return {
    redis,
    get auth() {
      return first(auths, 'auth');
    },
    get checkin() {
      return first(checkins, 'checkin');
    },
    auths,
    checkins,
    processors,
    start,
    startProcessor: processor,
    close,
  };
}

/** Log in and return the `checkinapp=…` cookie pair. */
export async function login(authUrl: string, email = DEMO.email, password = DEMO.password): Promise<string> {
  const res = await postJson(`${authUrl}/login`, { email, password });
  const cookie = cookiePair(res, 'checkinapp');
  if (res.status !== 200 || !cookie) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return cookie;
}

export function checkin(checkinUrl: string, body: unknown, cookie?: string): Promise<Response> {
  return postJson(`${checkinUrl}/api/checkin`, body, cookie ? { cookie } : {});
}

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Run `pnpm auth` / `pnpm checkin` / `pnpm processor` as the user would (node + tsx on the source), on a free port.
 * Resolves once the start-up line is logged (or rejects with the output if the process exits).
 */
const PORT_KEY = { auth: 'AUTH_PORT', checkin: 'CHECKIN_PORT', processor: 'PROCESSOR_PORT' } as const;

export async function spawnService(
  name: 'auth' | 'checkin' | 'processor',
  env: Env,
  options: { args?: string[]; waitFor?: RegExp | null } = {},
): Promise<ServiceProcess> {
  const port = env[PORT_KEY[name]] ?? String(await freePort());
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', `services/${name}/src/main.ts`, ...(options.args ?? [])], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      SESSION_SECRET: TEST_SECRET,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      // A free one: the fixed defaults would clash between the processes tests run side by side.
      METRICS_PORT: '0',
      ...env,
      [PORT_KEY[name]]: port,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const waitFor = options.waitFor === undefined ? /listening on port/ : options.waitFor;
  if (waitFor) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s:\n${output}`)), 20_000);
      const check = (): void => {
        if (waitFor.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before starting:\n${output}`));
      });
    });
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port: Number(port),
    output: () => output,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The URL of the process's GET /metrics, from its start-up line (spawnService gives it METRICS_PORT 0: a free port). */
export function metricsUrlOf(service: ServiceProcess): string {
  const url = /Metrics at (http:\/\/\S+\/metrics)/.exec(service.output())?.[1];
  if (!url) throw new Error(`no "Metrics at" line in the output:\n${service.output()}`);
  return url;
}

/** For a process expected to exit by itself (a refused configuration): its exit code; SIGKILL after `timeoutMs`. */
export async function exitOf(service: ServiceProcess, timeoutMs = 20_000): Promise<number | string> {
  const timer = setTimeout(() => void service.stop('SIGKILL'), timeoutMs);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface SpawnedServices {
  /** The file's own redis-server (started in beforeAll). */
  readonly redis: SpawnedRedis;
  /** spawnService on that Redis (REDIS_URL preset, `env` may override); stopped in afterAll. */
  spawn(name: 'auth' | 'checkin' | 'processor', env?: Env, options?: Parameters<typeof spawnService>[2]): Promise<ServiceProcess>;
}

/**
 * The usual arrangement of a file that runs services as child processes: one spawned Redis for the
 * file, and every process spawned on it stopped with `stopSignal` after the file's tests.
 */
export function useSpawnedServices(stopSignal: NodeJS.Signals = 'SIGKILL'): SpawnedServices {
  let redis: SpawnedRedis | undefined;
  const running: ServiceProcess[] = [];
  beforeAll(async () => {
    redis = await spawnRedis();
  });
  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop(stopSignal)));
    await redis?.stop();
  });
  const started = (): SpawnedRedis => {
    if (!redis) throw new Error('useSpawnedServices: Redis is started in beforeAll');
    return redis;
  };
  return {
    get redis() {
      return started();
    },
    spawn: async (name, env = {}, options = {}) => {
      const service = await spawnService(name, { REDIS_URL: started().url, ...env }, options);
      running.push(service);
      return service;
    },
  };
}
