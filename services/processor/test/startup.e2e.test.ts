/**
 * The checkin processor as `pnpm processor` runs it (a child process): its start-up lines, its health
 * and readiness routes (all it serves), the consumer group it creates in Redis, a graceful SIGTERM,
 * and a refused configuration.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKIN_STREAM, PROCESSOR_GROUP } from '@ncc/checkins';
import { until } from '@ncc/testing';
import { exitOf, ROOT, useSpawnedServices } from '../../../test/support/services.js';

const services = useSpawnedServices();

describe('processor start-up', () => {
  it('when `pnpm processor` runs, then it is the command the tests spawn', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['processor']).toBe('node --conditions=ncc-source --import tsx services/processor/src/main.ts');
  });

  it('when started against a fresh Redis, then it creates the group, logs the listening line, answers /healthz and /readyz, and SIGTERM exits 0', async () => {
    const service = await services.spawn('processor', { PROCESSOR_CONSUMER: 'startup-1' });
    expect(service.output()).toContain(`Checkin processor listening on port ${service.port} (health and readiness only).`);
    await until('the group created', 10_000, () =>
      service.output().includes(`Created consumer group ${PROCESSOR_GROUP} on ${CHECKIN_STREAM} as consumer startup-1.`),
    );
    const groups = (await services.redis.client.xinfo('GROUPS', CHECKIN_STREAM)) as string[][];
    expect(groups.map((g) => g[g.indexOf('name') + 1])).toEqual([PROCESSOR_GROUP]);
    expect(await services.redis.client.xlen(CHECKIN_STREAM)).toBe(0);

    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${service.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    // Health and readiness only: no API.
    expect((await fetch(`${service.url}/api/checkin`, { method: 'POST' })).status).toBe(404);

    expect(await service.stop('SIGTERM')).toBe(0);
    expect(service.output()).toContain('SIGTERM received, shutting down gracefully.');
    expect(service.output()).toContain('Shutdown complete.');
  });

  it('when started again, then it joins the existing group', async () => {
    const service = await services.spawn('processor', { PROCESSOR_CONSUMER: 'startup-2' });
    await until('the group joined', 10_000, () =>
      service.output().includes(`Joined consumer group ${PROCESSOR_GROUP} on ${CHECKIN_STREAM} as consumer startup-2.`),
    );
    expect(await service.stop('SIGTERM')).toBe(0);
  });

  it('when PROCESSOR_BLOCK_MS is not below REDIS_COMMAND_TIMEOUT_MS, then it refuses to start (exit 1) naming PROCESSOR_BLOCK_MS on stderr and never listens', async () => {
    const service = await services.spawn('processor', { PROCESSOR_BLOCK_MS: '2000', REDIS_COMMAND_TIMEOUT_MS: '1000' }, { waitFor: null });
    let stderr = '';
    service.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exitOf(service)).toBe(1);
    expect(stderr).toMatch(/PROCESSOR_BLOCK_MS: must be shorter than REDIS_COMMAND_TIMEOUT_MS \(2000 >= 1000\)/);
    expect(service.output()).not.toMatch(/listening on port/);
  });
});
