/**
 * An ambiguous Redis mode is refused by the real processes at start-up (exit 1, keys named, before
 * touching Redis). The schema rules themselves: config.test.ts.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, spawnService } from '../support/services.js';

describe('Redis mode conflicts in real processes', () => {
  it('when auth starts with REDIS_URL and REDIS_CLUSTER_NODES, then it exits 1 naming both keys before touching Redis', async () => {
    const service = await spawnService('auth', { REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:2' }, { waitFor: null });
    expect(await service.exited).toBe(1);
    expect(service.output()).toMatch(/REDIS_URL: set together with REDIS_CLUSTER_NODES/);
    expect(service.output()).not.toMatch(/at .*\.ts:\d+/);
  });

  it('when checkin starts with REDIS_SENTINELS but no REDIS_SENTINEL_NAME, then it exits 1 naming the missing key', async () => {
    const service = await spawnService('checkin', { REDIS_SENTINELS: '127.0.0.1:2' }, { waitFor: null });
    expect(await service.exited).toBe(1);
    expect(service.output()).toMatch(/REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS/);
  });

  it('when the seed CLI gets REDIS_CLUSTER_NODES and REDIS_SENTINELS, then it exits 1 naming both', async () => {
    const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'services/auth/src/cli/seed.ts'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'], REDIS_CLUSTER_NODES: '127.0.0.1:2', REDIS_SENTINELS: '127.0.0.1:3', REDIS_SENTINEL_NAME: 'ncc' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output).toMatch(/REDIS_CLUSTER_NODES: set together with REDIS_SENTINELS/);
  });
});
