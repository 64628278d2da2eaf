/**
 * Slow clients are cut at the documented timeouts — a body trickled a chunk at a
 * time at HTTP_REQUEST_TIMEOUT_MS, headers trickled a line at a time (or never sent) at
 * HTTP_HEADERS_TIMEOUT_MS, an idle keep-alive connection at HTTP_KEEP_ALIVE_TIMEOUT_MS — each within
 * about a second, with Node's `408 Request Timeout` where Node gives one. Raw sockets against the real
 * auth service, second-scale values. (Before the fix a trickled body was held 66 s + up to 30 s.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeRedis,
  ConfigError,
  createBaseApp,
  createRedisClient,
  loadConfig,
  type RunningServer,
  ServiceMetrics,
  startServer,
  waitForRedis,
} from '@ncc/service-kit';
import { captureLogs, type SpawnedRedis, spawnRedis, until } from '@ncc/testing';
import { createAuthApp, createPasswordHasher } from '../../services/auth/src/app.js';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { TEST_SECRET } from '../support/services.js';
import {
  HEADERS_MS,
  idleAfterOneRequest,
  KEEP_ALIVE_MS,
  LOGIN_HEAD,
  NODE_KEEP_ALIVE_BUFFER_MS,
  REQUEST_MS,
  SLACK_MS,
  slowBody,
  slowHeaders,
  TIMEOUTS,
  untilServerCloses,
} from './slow-client-sockets.js';

let redis: SpawnedRedis;
let server: RunningServer;
let logs: ReturnType<typeof captureLogs>;
let closeApp: () => Promise<void>;

beforeAll(async () => {
  redis = await spawnRedis();
  // The auth app as main.ts builds it, with its config handed to startServer as runService does.
  logs = captureLogs('auth');
  const config = loadConfig(authEnvSchema, { SESSION_SECRET: TEST_SECRET, NODE_ENV: 'test', REDIS_URL: redis.url, ...TIMEOUTS });
  const client = createRedisClient(config, logs.logger);
  await waitForRedis(client, 10_000);
  const service = createAuthApp({ config, logger: logs.logger, redis: client, metrics: new ServiceMetrics(true), hasher: createPasswordHasher(config) });
  server = await startServer(service.app, 0, '127.0.0.1', config);
  closeApp = async () => {
    await server.close(2000);
    await service.close();
    await closeRedis(client);
  };
});

afterAll(async () => {
  await closeApp?.();
  await redis?.stop();
});

// Each client has its own connection and its own clock: they run at once (a loaded event loop only makes a cut later, never earlier).
describe.concurrent('slow clients', () => {
  it('when a client trickles its login body a chunk every 500 ms, then the server answers 408 and closes the connection at HTTP_REQUEST_TIMEOUT_MS', async ({
    expect,
  }) => {
    const cut = await untilServerCloses(server.port, slowBody);
    console.info(`slow body cut after ${Math.round(cut.ms)} ms (HTTP_REQUEST_TIMEOUT_MS=${REQUEST_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(REQUEST_MS + SLACK_MS);
  });

  it('when a client trickles its headers a line every 500 ms, then the server answers 408 and closes the connection at HTTP_HEADERS_TIMEOUT_MS, before the request timeout', async ({
    expect,
  }) => {
    const cut = await untilServerCloses(server.port, slowHeaders);
    console.info(`slow headers cut after ${Math.round(cut.ms)} ms (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(Math.min(HEADERS_MS + SLACK_MS, REQUEST_MS));
  });

  it('when a client connects and sends nothing, then it gets 408 and the connection is closed at HTTP_HEADERS_TIMEOUT_MS', async ({ expect }) => {
    const cut = await untilServerCloses(server.port, () => undefined);
    console.info(`silent connection cut after ${Math.round(cut.ms)} ms (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(cut.ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(HEADERS_MS + SLACK_MS);
  });

  it("when a keep-alive connection is idle after a response, then the server closes it at HTTP_KEEP_ALIVE_TIMEOUT_MS (plus Node's fixed 1 s grace)", async ({
    expect,
  }) => {
    const cut = await untilServerCloses(server.port, idleAfterOneRequest);
    console.info(`idle keep-alive connection closed ${Math.round(cut.ms)} ms after its response (HTTP_KEEP_ALIVE_TIMEOUT_MS=${KEEP_ALIVE_MS})`);
    expect(cut.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(cut.received).toMatch(/\r\nConnection: keep-alive\r\n/i);
    expect(cut.received).toMatch(new RegExp(`\\r\\nKeep-Alive: timeout=${Math.floor(KEEP_ALIVE_MS / 1000)}\\r\\n`, 'i'));
    expect(cut.ms).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(cut.ms).toBeLessThanOrEqual(KEEP_ALIVE_MS + NODE_KEEP_ALIVE_BUFFER_MS + SLACK_MS);
  });

  it('when a client is slow but finishes within the timeouts, then it gets its normal answer', async ({ expect }) => {
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
});

describe('slow-client timeouts: what is left afterwards, and the configuration', () => {
  it("when the slow clients above have been cut, then none of it was logged as a server error (the abandoned reads are the clients' doing)", async () => {
    // Once the server holds no connection, it has handled the end of every request it had.
    await until(
      'the server has no open connection',
      5000,
      () => new Promise<boolean>((resolve) => server.server.getConnections((err, n) => resolve(!err && n === 0))),
    );
    expect(logs.entries().length).toBeGreaterThan(0);
    expect(logs.entries().filter((e) => e['level'] === 'error')).toEqual([]);
  });

  it('when HTTP_HEADERS_TIMEOUT_MS is longer than HTTP_REQUEST_TIMEOUT_MS, then the configuration is refused naming HTTP_HEADERS_TIMEOUT_MS and both values', () => {
    const load = (): unknown => loadConfig(authEnvSchema, { HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_HEADERS_TIMEOUT_MS: '3000' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/HTTP_HEADERS_TIMEOUT_MS: must not be longer than HTTP_REQUEST_TIMEOUT_MS \(3000 > 2000\)/);
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
});
