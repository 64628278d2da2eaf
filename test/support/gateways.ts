/**
 * The two gateways of the one-origin browser path, started for tests the way people run them:
 *  - `pnpm start` (scripts/start.ts: the three services and the Node gateway, supervised);
 *  - the nginx gateway of `docker compose up`: Debian's real nginx running deploy/nginx/gateway.conf
 *    (test/gateway/nginx.ts) in front of auth, checkin and the processor as child processes, with
 *    TRUST_PROXY=1 as compose sets it, optionally over HTTPS with a self-signed certificate.
 * Both on a spawned redis-server with append-only persistence (it survives kill + restart).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { NGINX, type NginxGateway, startNginxGateway } from '../gateway/nginx.js';
import { createUsers, ROOT, type ServiceProcess, spawnService, type TestUser } from './services.js';

export const hasNginx = NGINX !== undefined;
if (!hasNginx && process.env['CI']) throw new Error('nginx is missing (scripts/install-system-deps.sh installs nginx-light); CI needs it');

export interface BrowserGateway {
  /** The one origin, e.g. http://127.0.0.1:41234 (https:// with tls). */
  url: string;
  redis: SpawnedRedis;
  /** Stops auth and starts it again on the same port (sessions and counters live in Redis). */
  restartAuth(): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  users: TestUser[];
  /** nginx only: serve the one origin over HTTPS with a self-signed certificate (services: COOKIE_SECURE=true). */
  tls?: boolean;
}

/** Short heartbeats: a stream whose session ended is told so within a second. */
const LIVE_ENV = { LIVE_HEARTBEAT_MS: '1000' };

/** `pnpm start` against a spawned Redis with `users` in it (so it does not seed), every port a free one. */
export async function startPnpmStart(options: GatewayOptions): Promise<BrowserGateway> {
  const redis = await spawnRedis({ appendOnly: true });
  await createUsers(redis.url, options.users);
  const ports = Object.fromEntries(
    await Promise.all(['AUTH_PORT', 'CHECKIN_PORT', 'PROCESSOR_PORT', 'GATEWAY_PORT'].map(async (key) => [key, String(await freePort())] as const)),
  );
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      REDIS_URL: redis.url,
      NCC_REDIS_PORT: String(await freePort()),
      ...ports,
      // Not what the browser tests are about; fewer ports picked ahead of their use.
      AUTH_METRICS_PORT: 'off',
      CHECKIN_METRICS_PORT: 'off',
      PROCESSOR_METRICS_PORT: 'off',
      ...LIVE_ENV,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await until(
      'pnpm start to be ready',
      90_000,
      () => {
        if (child.exitCode !== null) throw new Error(`pnpm start exited (${child.exitCode}):\n${output}`);
        return output.includes('Press Ctrl-C to stop');
      },
      200,
    );
  } catch (err) {
    await stop();
    await redis.stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${output}`, { cause: err });
  }
  return {
    url: `http://127.0.0.1:${ports['GATEWAY_PORT']}`,
    redis,
    restartAuth: async () => {
      const pids = [...output.matchAll(/auth (?:re)?started \(pid (\d+)/g)].map((m) => Number(m[1]));
      const readyAgain = output.split('auth is ready again.').length;
      process.kill(pids.at(-1)!, 'SIGKILL');
      // pnpm start's supervisor restarts a crashed service on the same port.
      await until('pnpm start to restart auth', 30_000, () => output.split('auth is ready again.').length > readyAgain, 200);
    },
    close: async () => {
      await stop();
      await redis.stop();
    },
  };
}

/** The compose arrangement in miniature: auth, checkin and the processor as child processes behind the real nginx. */
export async function startNginxStack(options: GatewayOptions): Promise<BrowserGateway> {
  const redis = await spawnRedis({ appendOnly: true });
  await createUsers(redis.url, options.users);
  const dir = mkdtempSync(join(tmpdir(), 'ncc-nginx-'));
  let tls: { cert: string; key: string } | undefined;
  if (options.tls) {
    tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tls.key, '-out', tls.cert, '-days', '1', '-subj', '/CN=127.0.0.1'],
      {
        encoding: 'utf8',
      },
    );
    if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  }
  // As compose runs them behind the gateway: one trusted proxy hop; Secure cookies when served over HTTPS.
  const env = { REDIS_URL: redis.url, TRUST_PROXY: '1', ...LIVE_ENV, ...(tls ? { COOKIE_SECURE: 'true' } : {}) };
  const running: ServiceProcess[] = [];
  let nginx: NginxGateway | undefined;
  const close = async (): Promise<void> => {
    await nginx?.stop();
    await Promise.all(running.map((s) => s.stop('SIGTERM')));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [auth, checkin, processor] = await Promise.all([
      spawnService('auth', env),
      spawnService('checkin', env),
      spawnService('processor', { REDIS_URL: redis.url }),
    ]);
    running.push(auth, checkin, processor);
    nginx = await startNginxGateway({ auth: auth.port, checkin: checkin.port }, tls);
    return {
      url: nginx.urls.page,
      redis,
      restartAuth: async () => {
        const old = running.shift()!;
        await old.stop('SIGTERM');
        running.unshift(await spawnService('auth', { ...env, AUTH_PORT: String(auth.port) }));
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
