import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface SpawnRedisOptions {
  /** Append-only persistence (survives kill + restart). Default false. */
  appendOnly?: boolean;
  /** fsync policy when appendOnly: 'always' loses nothing acknowledged. Default 'always'. */
  appendFsync?: 'always' | 'everysec';
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  args?: string[];
  /** Reuse a data dir (and port) — what restart() does. */
  dir?: string;
  port?: number;
}

export interface SpawnedRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  /** A plain client for assertions (EXISTS, TTL, XLEN, DBSIZE). Closed by stop(). */
  readonly client: Redis;
  /** SIGKILL: no goodbye, no final fsync. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  shutdown(): Promise<void>;
  /** Start again on the same port and data dir (after kill or shutdown). */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the TCP port stays open but nothing answers. */
  pause(): void;
  resume(): void;
  /** Stop for good and delete the data dir. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Whatever happens to the test run, never leave redis-servers behind.
  process.on('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') {
        probe.disconnect();
        return;
      }
    } catch (err) {
      lastError = err;
    }
    probe.disconnect();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING: ${String(lastError)}`);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Start a real redis-server on a free port in a temp dir. Never touches the shared one on 6379. */
export async function spawnRedis(options: SpawnRedisOptions = {}): Promise<SpawnedRedis> {
  installExitHook();
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ncc-redis-'));
  let port = options.port ?? (await freePort());
  const args = (): string[] => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--protected-mode',
    'no',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--appendfsync',
    options.appendFsync ?? 'always',
    '--logfile',
    join(dir, 'redis.log'),
    ...(options.args ?? []),
  ];
  let child: ChildProcess;
  let pinned = options.port !== undefined;
  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      child = spawn('redis-server', args(), { stdio: 'ignore' });
      running.add(child);
      child.once('exit', () => running.delete(child));
      try {
        await waitForPing(port, child);
        return;
      } catch (err) {
        child.kill('SIGKILL');
        await exited(child);
        // The free port may have been taken between probing and binding: try another, unless pinned.
        if (attempt >= 3 || pinned) throw err;
        port = await freePort();
      }
    }
  };
  await launch();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();

  const handle: SpawnedRedis = {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    get pid() {
      return child.pid;
    },
    client,
    async kill() {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited(child);
    },
    async shutdown() {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited(child);
    },
    async start() {
      // Same port and data dir as before: clients reconnect to where they were.
      pinned = true;
      await launch();
    },
    async restart() {
      await handle.shutdown();
      await handle.start();
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async stop() {
      client.disconnect();
      await handle.kill();
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * Every key in a test's own Redis except those under the given prefixes, sorted: "nothing was
 * written" for tests where some bookkeeping (e.g. `ncc:ratelimit:` failure counters) is expected.
 * KEYS is fine here — a spawned, test-only server — and is never used by the services.
 */
export async function keysExcept(client: Redis, ...prefixes: string[]): Promise<string[]> {
  const keys = await client.keys('*');
  return keys.filter((k) => !prefixes.some((p) => k.startsWith(p))).sort();
}

/** Calls per command so far (INFO commandstats), e.g. `{ get: 3, evalsha: 1 }`. */
export async function commandCounts(client: Redis): Promise<Record<string, number>> {
  const info = await client.info('commandstats');
  const counts: Record<string, number> = {};
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[name!] = Number(calls);
  return counts;
}

/**
 * The commands Redis ran while `action` ran, by name (`{ get: 1, hgetall: 1 }`), without the INFO call
 * that measures it. Counts every client of the server, so it is exact on a test's own redis-server
 * once the action's commands have all arrived (await a round trip on the service's connection first).
 */
export async function commandsDuring(client: Redis, action: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await commandCounts(client);
  await action();
  const after = await commandCounts(client);
  const delta: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    // Redis counts a command once it has run: `after` includes the INFO that produced `before`.
    const ran = calls - (before[name] ?? 0) - (name === 'info' ? 1 : 0);
    if (ran !== 0) delta[name] = ran;
  }
  return delta;
}
