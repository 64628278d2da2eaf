/**
 * Bad configuration stops a service at start-up with exit code 1 and a message naming the key —
 * the real `pnpm auth` / `pnpm checkin` command in a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { exitOf, spawnService } from './support/services.js';

let redis: SpawnedRedis;

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** Start the service, expect it to exit by itself; returns its exit code and output. */
async function startExpectingExit(name: 'auth' | 'checkin', env: Record<string, string>): Promise<{ code: number | string; output: string }> {
  const service = await spawnService(name, { REDIS_URL: redis.url, ...env }, { waitFor: null });
  const code = await exitOf(service);
  return { code, output: service.output() };
}

describe('start-up configuration', () => {
  it('when REDIS_URL is not a URL, then auth exits 1 naming REDIS_URL', async () => {
    const { code, output } = await startExpectingExit('auth', { REDIS_URL: 'not-a-url' });
    expect(code).toBe(1);
    expect(output).toMatch(/REDIS_URL/);
    expect(output).not.toMatch(/listening on port/);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('when AUTH_PORT is not a number, then auth exits 1 naming AUTH_PORT', async () => {
    const { code, output } = await startExpectingExit('auth', { AUTH_PORT: 'abc' });
    expect(code).toBe(1);
    expect(output).toMatch(/AUTH_PORT/);
    expect(output).not.toMatch(/listening on port/);
  });

  it('when CHECKIN_PORT is out of range and REDIS_URL is not a URL, then checkin exits 1 naming both', async () => {
    const { code, output } = await startExpectingExit('checkin', { CHECKIN_PORT: '70000', REDIS_URL: 'http://example.com' });
    expect(code).toBe(1);
    expect(output).toMatch(/CHECKIN_PORT/);
    expect(output).toMatch(/REDIS_URL/);
  });

  it('when NODE_ENV=production and SESSION_SECRET is short, then auth exits 1 naming SESSION_SECRET', async () => {
    const { code, output } = await startExpectingExit('auth', { NODE_ENV: 'production', SESSION_SECRET: 'too-short' });
    expect(code).toBe(1);
    expect(output).toMatch(/SESSION_SECRET/);
    expect(output).not.toContain('too-short');
  });

  it('when the configuration is valid, then auth logs its listening line and stops cleanly on SIGTERM', async () => {
    const auth = await spawnService('auth', { REDIS_URL: redis.url });
    expect(auth.output()).toContain(`Authentication service listening on port ${auth.port}.`);
    const health = await fetch(`${auth.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await auth.stop('SIGTERM')).toBe(0);
    expect(auth.output()).not.toContain('SESSION_SECRET is not set');
  });

  it('when SESSION_SECRET is unset outside production, then checkin starts but warns that the public development secret signs cookies', async () => {
    const checkin = await spawnService('checkin', { REDIS_URL: redis.url, SESSION_SECRET: '' });
    expect(checkin.output()).toMatch(/warn.*SESSION_SECRET is not set: signing cookies with the public development secret/);
    expect(checkin.output()).toContain(`Checkin receiver listening on port ${checkin.port}.`);
    expect(await checkin.stop('SIGTERM')).toBe(0);
  });
});
