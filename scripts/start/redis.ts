import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { launch, type Managed } from './children.js';
import { ROOT } from './config.js';

export type Probe = { ok: true } | { ok: false; reason: string };

/** Does a Redis answer PING at `url` within about `timeoutMs`? One attempt, no retries, no queueing. */
export async function probeRedis(url: string, timeoutMs = 1500): Promise<Probe> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // ioredis rejects with "Connection is closed."; the socket's own error says why (ECONNREFUSED, NOAUTH, …).
  let cause: string | undefined;
  client.on('error', (err: Error) => (cause ??= err.message));
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === 'PONG' ? { ok: true } : { ok: false, reason: 'unexpected answer to PING' };
  } catch (err) {
    // Only the error's first line: enough to tell "connection refused" from "NOAUTH", nothing more.
    return { ok: false, reason: (cause ?? (err instanceof Error ? err.message : String(err))).split('\n')[0]! };
  } finally {
    client.disconnect();
  }
}

/** Whether something already listens on 127.0.0.1:`port`. */
export function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

export class RedisServerMissingError extends Error {}

/** Whether `command` is an executable file in one of the directories of `path` (the PATH variable). */
export function onPath(command: string, path = process.env['PATH'] ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      const file = join(dir, command);
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Install redis-server with scripts/install-system-deps.sh (the same script the test set-up uses):
 * apt-get as root or through sudo, Homebrew on macOS, else one line naming what to install. Its lines
 * go to `report` as they come; stdin is passed on, so sudo can ask for a password at a terminal.
 * Resolves to whether it succeeded; false too when there is no bash to run it with.
 */
export function installRedisServer(report: (line: string) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(ROOT, 'scripts', 'install-system-deps.sh'), 'redis-server'], {
      cwd: ROOT,
      stdio: ['inherit', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', report);
    child.once('error', (err) => {
      report(`Could not run scripts/install-system-deps.sh: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'bash is not on PATH' : err.message}.`);
      resolve(false);
    });
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** redis-server from PATH on 127.0.0.1:`port`, with append-only persistence in `dir`. Not yet answering: see waitForLocalRedis. */
export function launchLocalRedis(port: number, dir: string): Managed {
  mkdirSync(dir, { recursive: true });
  return launch(
    'redis',
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      // Every write goes to the append-only file (fsync once a second; on a graceful stop, all of it).
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--loglevel',
      'warning',
      '--logfile',
      '',
    ],
    { cwd: dir },
  );
}

/** Wait until the launched redis-server answers PING. Throws RedisServerMissingError when there is no redis-server on PATH. */
export async function waitForLocalRedis(redis: Managed, port: number): Promise<void> {
  try {
    await redis.started;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RedisServerMissingError('redis-server is not on PATH');
    throw err;
  }
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!redis.running()) throw new Error(`redis-server exited (${String(await redis.exited)}) before answering; see its [redis] lines above.`);
    if ((await probeRedis(url, 500)).ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within 15 s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
