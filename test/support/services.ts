/**
 * Start the real services for tests: in-process on a free port (fast, same code as main.ts minus the
 * process handlers) or as child processes (for signals, start-up and restarts). Both over real HTTP
 * against a real redis-server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { baseEnvSchema, type BaseConfig, closeRedis, createRedisClient, loadConfig, type RedisClient, type RunningServer, startServer, waitForRedis } from '@ncc/service-kit';
import { captureLogs, type CapturedLogs, cookiePair, freePort, postJson, type SpawnedRedis, spawnRedis, type SpawnRedisOptions } from '@ncc/testing';
import { createAuthApp } from '../../services/auth/src/app.js';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { UsersRepository } from '../../services/auth/src/data-access/users-repository.js';
import { BcryptHasher } from '../../services/auth/src/domain/passwords.js';
import { createCheckinApp } from '../../services/checkin/src/app.js';
import { checkinEnvSchema } from '../../services/checkin/src/config.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEST_SECRET = 'test-secret-test-secret-test-secret-0001';
export const DEMO = { id: 77, email: 'al.appelhof@example.com', password: 'secret123', firstName: 'Al', lastName: 'Appelhof' };

export interface StartedService {
  url: string;
  port: number;
  logs: CapturedLogs;
  redis: RedisClient;
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

async function startInProcess(
  name: string,
  env: Env,
  build: (logs: CapturedLogs, redis: RedisClient) => Parameters<typeof startServer>[0],
  redisConfig: BaseConfig,
): Promise<StartedService> {
  const logs = captureLogs(name);
  // The parsed config decides the mode (REDIS_URL, or REDIS_CLUSTER_NODES / REDIS_SENTINELS in env).
  const redis = createRedisClient(
    { ...redisConfig, REDIS_COMMAND_TIMEOUT_MS: Number(env['REDIS_COMMAND_TIMEOUT_MS'] ?? 1000), REDIS_CONNECT_TIMEOUT_MS: 1000 },
    logs.logger,
  );
  await waitForRedis(redis, 10_000);
  const server: RunningServer = await startServer(build(logs, redis), 0, '127.0.0.1', redisConfig);
  return {
    url: server.url,
    port: server.port,
    logs,
    redis,
    close: async () => {
      await server.close(2000);
      await closeRedis(redis);
    },
  };
}

/**
 * The auth app in this process on a free port. For Redis Cluster / Sentinel pass '' as redisUrl and
 * REDIS_CLUSTER_NODES or REDIS_SENTINELS + REDIS_SENTINEL_NAME in env.
 */
export function startAuth(redisUrl: string, env: Env = {}): Promise<StartedService> {
  const config = loadConfig(authEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', ...env, REDIS_URL: redisUrl });
  return startInProcess('auth', env, (logs, redis) => createAuthApp({ config, logger: logs.logger, redis }), config);
}

/** The checkin app in this process on a free port (Cluster / Sentinel: as for startAuth). */
export function startCheckin(redisUrl: string, env: Env = {}): Promise<StartedService> {
  const config = loadConfig(checkinEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', ...env, REDIS_URL: redisUrl });
  return startInProcess('checkin', env, (logs, redis) => createCheckinApp({ config, logger: logs.logger, redis }), config);
}

/**
 * Write users straight through the repository (bcrypt cost 10, as in production). `target` is a
 * REDIS_URL, or Redis env keys such as `{ REDIS_CLUSTER_NODES: '127.0.0.1:7000,…' }`.
 */
export async function createUsers(target: string | Env, users: { id: number; email: string; password: string; firstName?: string; lastName?: string }[]): Promise<void> {
  const logs = captureLogs('seed');
  const redisConfig = loadConfig(baseEnvSchema, typeof target === 'string' ? { REDIS_URL: target } : target);
  const redis = createRedisClient({ ...redisConfig, REDIS_COMMAND_TIMEOUT_MS: 2000, REDIS_CONNECT_TIMEOUT_MS: 1000 }, logs.logger);
  await waitForRedis(redis, 5000);
  const repository = new UsersRepository(redis);
  const hasher = new BcryptHasher(10);
  await Promise.all(
    users.map(async (u) =>
      repository.save({ id: u.id, email: u.email, firstName: u.firstName ?? 'Test', lastName: u.lastName ?? `User${u.id}`, passwordHash: await hasher.hash(u.password) }),
    ),
  );
  await closeRedis(redis);
}

export interface Stack {
  redis: SpawnedRedis;
  auth: StartedService;
  checkin: StartedService;
  close(): Promise<void>;
}

/** The usual arrangement: a spawned Redis, some users, and both services in-process on it. */
export async function startStack(options: { users?: Parameters<typeof createUsers>[1]; env?: Env; redis?: SpawnRedisOptions } = {}): Promise<Stack> {
  const redis = await spawnRedis(options.redis);
  await createUsers(redis.url, options.users ?? [DEMO]);
  const [auth, checkinService] = await Promise.all([startAuth(redis.url, options.env), startCheckin(redis.url, options.env)]);
  return {
    redis,
    auth,
    checkin: checkinService,
    close: async () => {
      await Promise.all([auth.close(), checkinService.close()]);
      await redis.stop();
    },
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
 * Run `pnpm auth` / `pnpm checkin` as the user would (node + tsx on the source), on a free port.
 * Resolves once the start-up line is logged (or rejects with the output if the process exits).
 */
export async function spawnService(name: 'auth' | 'checkin', env: Env, options: { args?: string[]; waitFor?: RegExp | null } = {}): Promise<ServiceProcess> {
  const port = env[name === 'auth' ? 'AUTH_PORT' : 'CHECKIN_PORT'] ?? String(await freePort());
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', `services/${name}/src/main.ts`, ...(options.args ?? [])], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      SESSION_SECRET: TEST_SECRET,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      ...env,
      [name === 'auth' ? 'AUTH_PORT' : 'CHECKIN_PORT']: port,
    } as NodeJS.ProcessEnv,
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
