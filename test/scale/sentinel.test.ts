/**
 * Redis Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME): auth and checkin run as real processes
 * against a master, a replica and three sentinels. The master is SIGKILLed; the sentinels promote the
 * replica and the same processes answer again, without a restart. During the switch every answer is
 * a fast JSON 503 — never a hang, a 500, or a 401 because the store could not be read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionIdOf, sleep } from '@ncc/testing';
import { checkin, createUsers, DEMO, login, spawnService, type ServiceProcess } from '../support/services.js';
import { type SentinelSetup, startSentinelSetup } from './topology.js';

let setup: SentinelSetup;
let auth: ServiceProcess;
let checkinService: ServiceProcess;
let env: Record<string, string>;

beforeAll(async () => {
  setup = await startSentinelSetup('ncc');
  env = { REDIS_SENTINELS: setup.addresses, REDIS_SENTINEL_NAME: setup.name };
  await createUsers(env, [DEMO]);
  [auth, checkinService] = await Promise.all([spawnService('auth', env), spawnService('checkin', env)]);
});

afterAll(async () => {
  await Promise.all([auth?.stop(), checkinService?.stop()]);
  await setup?.stop();
});

interface Observation {
  what: string;
  status: number;
  ms: number;
  code?: string;
  contentType: string | null;
}

async function observe(what: string, request: () => Promise<Response>): Promise<Observation> {
  const started = performance.now();
  const res = await request();
  const text = await res.text();
  const ms = Math.round(performance.now() - started);
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = 'NOT_JSON';
  }
  return { what, status: res.status, ms, ...(code ? { code } : {}), contentType: res.headers.get('content-type') };
}

describe('Redis Sentinel failover', () => {
  it('when the master is killed, then after promotion the same service processes answer again, with only fast 503s in between', async () => {
    const cookie = await login(auth.url);
    const sid = sessionIdOf(cookie);
    const before = await checkin(checkinService.url, { userId: DEMO.id, locationId: 1, starRating: 5 }, cookie);
    expect(before.status).toBe(202);
    const acceptedIds = [((await before.json()) as { id: string }).id];
    // The session and the checkin have reached the replica before the master dies.
    expect(await setup.master.client.call('WAIT', '1', '2000')).toBe(1);
    expect(await setup.replica.client.exists(`ncc:session:${sid}`)).toBe(1);
    const oldMasterPort = setup.master.port;

    await setup.master.kill();
    const killedAt = Date.now();

    const observations: Observation[] = [];
    let locationId = 100;
    let recoveredAt: number | undefined;
    while (Date.now() - killedAt < 20_000) {
      const signal = AbortSignal.timeout(5000);
      const loc = locationId++;
      const [me, ci] = await Promise.all([
        observe('GET /me', () => fetch(`${auth.url}/me`, { headers: { cookie }, signal })),
        observe('POST /api/checkin', () =>
          fetch(`${checkinService.url}/api/checkin`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', cookie },
            body: JSON.stringify({ userId: DEMO.id, locationId: loc, starRating: 4 }),
            signal,
          }),
        ),
      ]);
      observations.push(me, ci);
      if (me.status === 200 && ci.status === 202) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(150);
    }
    const unavailable = observations.filter((o) => o.status === 503);
    const slowest = Math.max(...observations.map((o) => o.ms));
    console.info(
      `sentinel failover: recovered ${recoveredAt ? recoveredAt - killedAt : 'never'} ms after SIGKILL; ` +
        `${observations.length} requests, ${unavailable.length} x 503, slowest ${slowest} ms`,
    );

    expect(recoveredAt, JSON.stringify(observations)).toBeDefined();
    for (const o of observations) {
      // Only success or "unavailable": a 401 here would mean a store error was taken for "no session".
      expect([200, 202, 503], JSON.stringify(o)).toContain(o.status);
      expect(o.contentType).toMatch(/^application\/json/);
      if (o.status === 503) expect(o.code).toBe('SERVICE_UNAVAILABLE');
      expect(o.ms, JSON.stringify(o)).toBeLessThan(1500);
    }

    // The sentinels promoted the replica, and the services now write there.
    expect(await setup.masterPort()).toBe(setup.replica.port);
    expect(setup.replica.port).not.toBe(oldMasterPort);
    const role = await setup.replica.client.info('replication');
    expect(role).toContain('role:master');

    // Nothing accepted is missing on the new master: the pre-kill checkin and every 202 after it.
    const after = await checkin(checkinService.url, { userId: DEMO.id, locationId: 9999, starRating: 3 }, cookie);
    expect(after.status).toBe(202);
    acceptedIds.push(((await after.json()) as { id: string }).id);
    const stream = await setup.replica.client.xrange('ncc:checkins', '-', '+');
    const ids = stream.map(([id]) => id);
    for (const id of acceptedIds) expect(ids).toContain(id);
    expect(stream.length).toBe(observations.filter((o) => o.status === 202).length + acceptedIds.length);

    // The old session is still valid on the new master; logout there ends it everywhere.
    expect((await fetch(`${auth.url}/me`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } })).status).toBe(200);
    expect(await setup.replica.client.exists(`ncc:session:${sid}`)).toBe(0);
    expect((await checkin(checkinService.url, { userId: DEMO.id, locationId: 10_000, starRating: 3 }, cookie)).status).toBe(401);

    // Both processes are the ones started before the failover.
    expect(auth.child.exitCode).toBeNull();
    expect(checkinService.child.exitCode).toBeNull();
  }, 60_000);
});
