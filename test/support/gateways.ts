/**
 * The two gateways of the one-origin browser path, started for tests the way people run them:
 *  - `pnpm start` (scripts/start.ts: the three services and the Node gateway, supervised);
 *  - the nginx gateway of `docker compose up`: Debian's real nginx running deploy/nginx/gateway.conf
 *    (test/gateway/nginx.ts) in front of auth, checkin and the processor as child processes, with
 *    TRUST_PROXY=1 as compose sets it, optionally over HTTPS with a self-signed certificate.
 * Both on a spawned redis-server with append-only persistence (it survives kill + restart).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { NGINX, type NginxGateway, startNginxGateway } from '../gateway/nginx.js';
import { createUsers, type ServiceProcess, spawnService, type TestUser } from './services.js';
import { runStart } from './start.js';

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
  const run = await runStart({ REDIS_URL: redis.url, NCC_REDIS_PORT: String(await freePort()), ...LIVE_ENV });
  try {
    await run.ready(90_000);
  } catch (err) {
    await run.signal('SIGTERM');
    await redis.stop();
    throw err;
  }
  return {
    url: run.gatewayUrl,
    redis,
    restartAuth: async () => {
      const pids = [...run.output().matchAll(/auth (?:re)?started \(pid (\d+)/g)].map((m) => Number(m[1]));
      const readyAgain = run.output().split('auth is ready again.').length;
      process.kill(pids.at(-1)!, 'SIGKILL');
      // pnpm start's supervisor restarts a crashed service on the same port.
      await until('pnpm start to restart auth', 30_000, () => run.output().split('auth is ready again.').length > readyAgain, 200);
    },
    close: async () => {
      await run.signal('SIGTERM');
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
