/**
 * Slow clients with the real `pnpm auth` process: the HTTP_*_TIMEOUT_MS it is given reach its
 * server (the in-process cases, one by one: slow-clients.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { type ServiceProcess, spawnService } from '../support/services.js';
import {
  HEADERS_MS,
  idleAfterOneRequest,
  KEEP_ALIVE_MS,
  NODE_KEEP_ALIVE_BUFFER_MS,
  REQUEST_MS,
  SLACK_MS,
  slowBody,
  slowHeaders,
  TIMEOUTS,
  untilServerCloses,
} from './slow-client-sockets.js';

let redis: SpawnedRedis;
let spawned: ServiceProcess | undefined;

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await spawned?.stop('SIGTERM');
  await redis?.stop();
});

describe('slow clients', () => {
  it('when the real `pnpm auth` process is given HTTP_*_TIMEOUT_MS, then it applies them: a trickled body, trickled headers and an idle keep-alive connection are cut in time', async () => {
    spawned = await spawnService('auth', { REDIS_URL: redis.url, ...TIMEOUTS });
    const [body, headers, idle] = await Promise.all([
      untilServerCloses(spawned.port, slowBody),
      untilServerCloses(spawned.port, slowHeaders),
      untilServerCloses(spawned.port, idleAfterOneRequest),
    ]);
    console.info(
      `pnpm auth: slow body cut after ${Math.round(body.ms)} ms, slow headers after ${Math.round(headers.ms)} ms, idle keep-alive after ${Math.round(idle.ms)} ms`,
    );
    expect(body.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(body.ms).toBeLessThanOrEqual(REQUEST_MS + SLACK_MS);
    expect(headers.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(headers.ms).toBeLessThanOrEqual(HEADERS_MS + SLACK_MS);
    expect(idle.ms).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(idle.ms).toBeLessThanOrEqual(KEEP_ALIVE_MS + NODE_KEEP_ALIVE_BUFFER_MS + SLACK_MS);
  });
});
