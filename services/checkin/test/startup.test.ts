/**
 * The checkin receiver as `pnpm checkin` runs it (a child process): its start-up lines, and the
 * demo-only switch that turns authentication off — refused in production.
 */
import { describe, expect, it } from 'vitest';
import { checkin, exitOf, type ServiceProcess, useSpawnedServices } from '../../../test/support/services.js';

const services = useSpawnedServices();
const start = (env: Record<string, string>, args: string[] = []): Promise<ServiceProcess> => services.spawn('checkin', env, { args });

describe('checkin start-up', () => {
  it('when started with defaults, then it logs "Authentication enabled…" and then "Checkin receiver listening on port N.", and refuses anonymous checkins', async () => {
    const service = await start({});
    const output = service.output();
    const enabled = output.indexOf('Authentication enabled, checkins require a valid user session.');
    const listening = output.indexOf(`Checkin receiver listening on port ${service.port}.`);
    expect(enabled).toBeGreaterThanOrEqual(0);
    expect(listening).toBeGreaterThan(enabled);
    expect(output).not.toMatch(/DISABLED/);

    const lenBefore = await services.redis.client.xlen('ncc:checkins');
    expect((await checkin(service.url, { userId: 1, locationId: 1, starRating: 5 })).status).toBe(401);
    expect(await services.redis.client.xlen('ncc:checkins')).toBe(lenBefore);
    expect(await service.stop('SIGTERM')).toBe(0);
    expect(service.output()).toContain('Shutdown complete.');
  });

  it('when CHECKIN_AUTH=off, then it warns at start and accepts a checkin without any session', async () => {
    const service = await start({ CHECKIN_AUTH: 'off' });
    const output = service.output();
    expect(output).toMatch(/warn.*Authentication DISABLED \(CHECKIN_AUTH=off\)/);
    expect(output).not.toContain('Authentication enabled');
    expect(output).toContain(`Checkin receiver listening on port ${service.port}.`);

    const lenBefore = await services.redis.client.xlen('ncc:checkins');
    const res = await checkin(service.url, { userId: 5, locationId: 9001, starRating: 2 });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const [[, fields]] = (await services.redis.client.xrange('ncc:checkins', id, id)) as [[string, string[]]];
    expect(fields.slice(0, 6)).toEqual(['userId', '5', 'locationId', '9001', 'starRating', '2']);
    expect(await services.redis.client.xlen('ncc:checkins')).toBe(lenBefore + 1);
    // Validation and duplicate detection still apply without authentication.
    expect((await checkin(service.url, { userId: 5, locationId: 9001, starRating: 7 })).status).toBe(400);
    expect((await checkin(service.url, { userId: 5, locationId: 9001, starRating: 2 })).status).toBe(422);
    await service.stop();
  });

  it('when started with --no-auth, then it behaves like CHECKIN_AUTH=off', async () => {
    const service = await start({}, ['--no-auth']);
    expect(service.output()).toMatch(/Authentication DISABLED/);
    expect((await checkin(service.url, { userId: 6, locationId: 9002, starRating: 1 })).status).toBe(202);
    await service.stop();
  });

  it('when NODE_ENV=production and CHECKIN_AUTH=off, then the process refuses to start (exit 1) and never listens', async () => {
    const service = await services.spawn('checkin', { NODE_ENV: 'production', CHECKIN_AUTH: 'off' }, { waitFor: null });
    expect(await exitOf(service)).toBe(1);
    expect(service.output()).toMatch(/CHECKIN_AUTH=off.*refused.*NODE_ENV=production/);
    expect(service.output()).not.toMatch(/listening on port/);
  });
});
