/**
 * Bad configuration stops a service at start-up with exit code 1 and a message naming the key —
 * the real `pnpm auth` / `pnpm checkin` command in a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, scrape, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { exitOf, metricsUrlOf, spawnService } from './support/services.js';

let redis: SpawnedRedis;

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** Start the service, expect it to exit by itself; returns its exit code and output. */
async function startExpectingExit(name: 'auth' | 'checkin' | 'processor', env: Record<string, string>): Promise<{ code: number | string; output: string }> {
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

describe('METRICS_PORT', () => {
  it('when METRICS_PORT is not a port or "off", then checkin exits 1 naming METRICS_PORT', async () => {
    const { code, output } = await startExpectingExit('checkin', { METRICS_PORT: 'on' });
    expect(code).toBe(1);
    expect(output).toMatch(/METRICS_PORT: must be a port number \(0-65535\) or "off"/);
  });

  it('when METRICS_PORT is taken, then auth exits 1 saying so instead of serving without metrics', async () => {
    const holder = await spawnService('checkin', { REDIS_URL: redis.url });
    try {
      const taken = new URL(metricsUrlOf(holder)).port;
      const { code, output } = await startExpectingExit('auth', { METRICS_PORT: taken });
      expect(code).toBe(1);
      expect(output).toContain(`Could not listen on METRICS_PORT ${taken}`);
      expect(output).not.toMatch(/listening on port/);
    } finally {
      await holder.stop('SIGTERM');
    }
  });

  it('when METRICS_PORT=off, then the processor serves no metrics listener and says nothing about one, and still works', async () => {
    const processor = await spawnService('processor', { REDIS_URL: redis.url, METRICS_PORT: 'off' });
    try {
      expect(processor.output()).not.toContain('Metrics at');
      expect((await fetch(`${processor.url}/readyz`)).status).toBe(200);
    } finally {
      expect(await processor.stop('SIGTERM')).toBe(0);
    }
  });

  it('when METRICS_PORT is a free port, then the listener answers GET /metrics there and stops with the service', async () => {
    const auth = await spawnService('auth', { REDIS_URL: redis.url });
    const url = metricsUrlOf(auth);
    const samples = await scrape(url);
    expect(metricValue(samples, 'ncc_redis_up')).toBe(1);
    expect(await auth.stop('SIGTERM')).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
