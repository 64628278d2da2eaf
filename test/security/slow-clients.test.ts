/**
 * Issue 13 item 6d: slow clients are cut at the documented timeouts — a body trickled a chunk at a
 * time at HTTP_REQUEST_TIMEOUT_MS, headers trickled a line at a time (or never sent) at
 * HTTP_HEADERS_TIMEOUT_MS, an idle keep-alive connection at HTTP_KEEP_ALIVE_TIMEOUT_MS — each within
 * about a second, with Node's `408 Request Timeout` where Node gives one. Raw sockets against the real
 * auth service, second-scale values. (Before the fix a trickled body was held 66 s + up to 30 s.)
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, ConfigError, createBaseApp, createRedisClient, loadConfig, type RunningServer, startServer, waitForRedis } from '@ncc/service-kit';
import { captureLogs, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { createAuthApp, createPasswordHasher } from '../../services/auth/src/app.js';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { type ServiceProcess, spawnService, TEST_SECRET } from '../support/services.js';

const REQUEST_MS = 2500;
const HEADERS_MS = 1000;
const KEEP_ALIVE_MS = 1500;
/** How late a cut may come: the check interval (here 250 ms) plus scheduling on a busy machine. */
const SLACK_MS = 1500;
/**
 * Node 20 closes an idle keep-alive socket a fixed second after the `Keep-Alive: timeout=` it
 * advertises (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER in lib/_http_server.js), so a client that honours
 * the advertised value never races the close.
 */
const NODE_KEEP_ALIVE_BUFFER_MS = 1000;
const TIMEOUTS = { HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS), HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS), HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS) };

let redis: SpawnedRedis;
let server: RunningServer;
let logs: ReturnType<typeof captureLogs>;
let closeApp: () => Promise<void>;
let spawned: ServiceProcess | undefined;

beforeAll(async () => {
  redis = await spawnRedis();
  // The auth app as main.ts builds it, with its config handed to startServer as runService does.
  logs = captureLogs('auth');
  const config = loadConfig(authEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', REDIS_URL: redis.url, ...TIMEOUTS });
  const client = createRedisClient(config, logs.logger);
  await waitForRedis(client, 10_000);
  const service = createAuthApp({ config, logger: logs.logger, redis: client, hasher: createPasswordHasher(config) });
  server = await startServer(service.app, 0, '127.0.0.1', config);
  closeApp = async () => {
    await server.close(2000);
    await service.close();
    await closeRedis(client);
  };
});

afterAll(async () => {
  await spawned?.stop('SIGTERM');
  await closeApp?.();
  await redis?.stop();
});

interface Cut {
  /** From the connection's first byte (or from `startAt`) to the server closing it. */
  ms: number;
  /** Everything the server sent. */
  received: string;
}

/**
 * Connect, run `client` (which writes on its own schedule), and resolve when the server ends the
 * connection. `client` may call `mark()` to restart the clock (e.g. when a response has arrived).
 * Fails if the server has not closed it within `giveUpMs`.
 */
function untilServerCloses(port: number, client: (socket: net.Socket, mark: () => void, received: () => string) => (() => void) | void, giveUpMs = 20_000): Promise<Cut> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    let start = 0;
    let stop: (() => void) | void;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${giveUpMs} ms; received: ${JSON.stringify(received)}`));
    }, giveUpMs);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    // The writes the client keeps making may hit a closed socket; that is the point.
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      start = performance.now();
      stop = client(socket, () => (start = performance.now()), () => received);
    });
    socket.once('close', () => {
      clearTimeout(giveUp);
      stop?.();
      resolve({ ms: performance.now() - start, received });
    });
  });
}

/** Write `next()` every `everyMs` until the socket closes; returns the stop function. */
function trickle(socket: net.Socket, everyMs: number, next: (n: number) => string): () => void {
  let n = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(next(n++));
  }, everyMs);
  return () => clearInterval(timer);
}

const LOGIN_HEAD = 'POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';

/** A slow body: the login headers at once, then a one-byte chunk (JSON whitespace) every 500 ms, forever. */
const slowBody = (socket: net.Socket): (() => void) => {
  socket.write(LOGIN_HEAD);
  return trickle(socket, 500, () => '1\r\n \r\n');
};

/** Slow headers: the request line, then one more header line every 500 ms, never the blank line. */
const slowHeaders = (socket: net.Socket): (() => void) => {
  socket.write('POST /login HTTP/1.1\r\n');
  return trickle(socket, 500, (n) => `X-Slow-${n}: ${n}\r\n`);
};

/** One complete GET /healthz on a keep-alive connection, then silence; the clock starts at the response. */
const idleAfterOneRequest = (socket: net.Socket, mark: () => void, received: () => string): (() => void) => {
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const onData = (): void => {
    if (received().includes('{"status":"ok"}')) {
      mark();
      socket.off('data', onData);
    }
  };
  socket.on('data', onData);
  return () => socket.off('data', onData);
};

describe('slow clients', () => {
  it('when a client trickles its login body a chunk every 500 ms, then the server answers 408 and closes the connection at HTTP_REQUEST_TIMEOUT_MS', async () => {
    const cut = await untilServerCloses(server.port, slowBody);
    console.info(`slow body cut after ${Math.round(cut.ms)} ms (HTTP_REQUEST_TIMEOUT_MS=${REQUEST_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(REQUEST_MS + SLACK_MS);
    // The abandoned body read is the client's doing: nothing is logged as a server error.
    await new Promise((r) => setImmediate(r));
    expect(logs.entries().filter((e) => e['level'] === 'error')).toEqual([]);
  });

  it('when a client trickles its headers a line every 500 ms, then the server answers 408 and closes the connection at HTTP_HEADERS_TIMEOUT_MS, before the request timeout', async () => {
    const cut = await untilServerCloses(server.port, slowHeaders);
    console.info(`slow headers cut after ${Math.round(cut.ms)} ms (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(Math.min(HEADERS_MS + SLACK_MS, REQUEST_MS));
  });

  it('when a client connects and sends nothing, then it gets 408 and the connection is closed at HTTP_HEADERS_TIMEOUT_MS', async () => {
    const cut = await untilServerCloses(server.port, () => undefined);
    console.info(`silent connection cut after ${Math.round(cut.ms)} ms (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(HEADERS_MS + SLACK_MS);
  });

  it('when a keep-alive connection is idle after a response, then the server closes it at HTTP_KEEP_ALIVE_TIMEOUT_MS (plus Node\'s fixed 1 s grace)', async () => {
    const cut = await untilServerCloses(server.port, idleAfterOneRequest);
    console.info(`idle keep-alive connection closed ${Math.round(cut.ms)} ms after its response (HTTP_KEEP_ALIVE_TIMEOUT_MS=${KEEP_ALIVE_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(cut.received).toMatch(/\r\nConnection: keep-alive\r\n/i);
    expect(cut.received).toMatch(new RegExp(`\\r\\nKeep-Alive: timeout=${Math.floor(KEEP_ALIVE_MS / 1000)}\\r\\n`, 'i'));
    expect(cut.ms).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(KEEP_ALIVE_MS + NODE_KEEP_ALIVE_BUFFER_MS + SLACK_MS);
  });

  it('when a client is slow but finishes within the timeouts, then it gets its normal answer', async () => {
    const body = JSON.stringify({ email: 'nobody@example.com', password: 'wrong-password' });
    const parts = [body.slice(0, 10), body.slice(10, 20), body.slice(20)];
    const answer = await untilServerCloses(server.port, (socket) => {
      socket.write(LOGIN_HEAD.replace('HTTP/1.1\r\n', 'HTTP/1.1\r\nConnection: close\r\n'));
      let i = 0;
      const timer = setInterval(() => {
        const part = parts[i++];
        socket.write(part === undefined ? '0\r\n\r\n' : `${part.length.toString(16)}\r\n${part}\r\n`);
        if (part === undefined) clearInterval(timer);
      }, 300);
      return () => clearInterval(timer);
    });
    expect(answer.received).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer.received).toContain('INVALID_CREDENTIALS');
  });

  it('when HTTP_HEADERS_TIMEOUT_MS is longer than HTTP_REQUEST_TIMEOUT_MS, then the configuration is refused naming HTTP_HEADERS_TIMEOUT_MS', () => {
    const load = (): unknown => loadConfig(authEnvSchema, { HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_HEADERS_TIMEOUT_MS: '3000' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
  });

  it('when nothing is configured, then the documented defaults apply: request 30 s, headers 20 s, keep-alive 65 s, checked every second', async () => {
    const config = loadConfig(authEnvSchema, {});
    expect([config.HTTP_REQUEST_TIMEOUT_MS, config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_KEEP_ALIVE_TIMEOUT_MS]).toEqual([30_000, 20_000, 65_000]);
    for (const plain of [await startServer(createBaseApp(), 0, '127.0.0.1', config), await startServer(createBaseApp(), 0)]) {
      try {
        expect([plain.server.requestTimeout, plain.server.headersTimeout, plain.server.keepAliveTimeout]).toEqual([30_000, 20_000, 65_000]);
        expect((plain.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBe(1000);
      } finally {
        await plain.close(500);
      }
    }
  });

  it('when the real `pnpm auth` process is given HTTP_*_TIMEOUT_MS, then it applies them: a trickled body, trickled headers and an idle keep-alive connection are cut in time', async () => {
    spawned = await spawnService('auth', { REDIS_URL: redis.url, ...TIMEOUTS });
    const [body, headers, idle] = await Promise.all([
      untilServerCloses(spawned.port, slowBody),
      untilServerCloses(spawned.port, slowHeaders),
      untilServerCloses(spawned.port, idleAfterOneRequest),
    ]);
    console.info(`pnpm auth: slow body cut after ${Math.round(body.ms)} ms, slow headers after ${Math.round(headers.ms)} ms, idle keep-alive after ${Math.round(idle.ms)} ms`);
    expect(body.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(body.ms).toBeLessThanOrEqual(REQUEST_MS + SLACK_MS);
    expect(headers.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(headers.ms).toBeLessThanOrEqual(HEADERS_MS + SLACK_MS);
    expect(idle.ms).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(idle.ms).toBeLessThanOrEqual(KEEP_ALIVE_MS + NODE_KEEP_ALIVE_BUFFER_MS + SLACK_MS);
  });
});
