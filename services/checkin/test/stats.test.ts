/**
 * The read API over the processor's statistics, and back-pressure when processing falls behind: the
 * receiver in-process, with and without a processor, on a real redis-server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKIN_STREAM } from '@ncc/checkins';
import { until } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, startStack } from '../../../test/support/services.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const OTHER = { id: 78, email: 'other.user@example.com', password: 'other-secret-1' };
const FAST = { PROCESSOR_BLOCK_MS: '100', PROCESSOR_TRIM_INTERVAL_MS: '100' };

const get = (url: string, cookie?: string): Promise<Response> => fetch(url, cookie ? { headers: { cookie } } : {});

describe('stats API', () => {
  it('when a user checks in, then their stats and the location stats show it as JSON numbers', async () => {
    stack = await startStack({ users: [DEMO, OTHER], rounds: 4, processors: 1, processorEnv: FAST });
    const cookie = await login(stack.auth.url);
    const before = await get(`${stack.checkin.url}/api/users/${DEMO.id}/stats`, cookie);
    expect(before.status).toBe(200);
    expect(await before.json()).toEqual({ userId: DEMO.id, numCheckins: 0, lastCheckin: null, lastSeenAt: null });

    const accepted = await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 42, starRating: 4 }, cookie);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    const user = await until('the checkin applied', 10_000, async () => {
      const body = (await (await get(`${stack!.checkin.url}/api/users/${DEMO.id}/stats`, cookie)).json()) as { numCheckins: number };
      return body.numCheckins === 1 ? body : undefined;
    });
    expect(user).toEqual({ userId: DEMO.id, numCheckins: 1, lastCheckin: Number(id.split('-')[0]), lastSeenAt: 42 });
    // The location's effect is applied just after the user's: poll for it too.
    const location = await until('the location counted', 10_000, async () => {
      const res = await get(`${stack!.checkin.url}/api/locations/42/stats`, cookie);
      return res.status === 200 ? res : undefined;
    });
    expect(location.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await location.json()).toEqual({ locationId: 42, numCheckins: 1, numStars: 4, averageStars: 4 });
    // Any signed-in user may read a location's stats.
    const other = await login(stack.auth.url, OTHER.email, OTHER.password);
    expect(await (await get(`${stack.checkin.url}/api/locations/42/stats`, other)).json()).toMatchObject({ numCheckins: 1 });
  });

  it('when the request has no valid session, then 401 and nothing is read', async () => {
    stack = await startStack({ rounds: 4 });
    for (const path of [`/api/users/${DEMO.id}/stats`, '/api/locations/1/stats']) {
      const res = await get(`${stack.checkin.url}${path}`);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      expect((await get(`${stack.checkin.url}${path}`, 'checkinapp=s%3Aforged.signature')).status).toBe(401);
    }
  });

  it("when a user asks for someone else's stats, then 403: where a person was last seen is theirs", async () => {
    stack = await startStack({ users: [DEMO, OTHER], rounds: 4 });
    const cookie = await login(stack.auth.url);
    const res = await get(`${stack.checkin.url}/api/users/${OTHER.id}/stats`, cookie);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN', message: 'You can only read your own stats.' } });
    // An id that does not exist is refused the same way: no way to probe which users exist.
    expect((await get(`${stack.checkin.url}/api/users/999999/stats`, cookie)).status).toBe(403);
  });

  it('when the location has no checkins or the own user record is gone, then 404', async () => {
    stack = await startStack({ rounds: 4 });
    const cookie = await login(stack.auth.url);
    const location = await get(`${stack.checkin.url}/api/locations/7/stats`, cookie);
    expect(location.status).toBe(404);
    expect(await location.json()).toMatchObject({ error: { code: 'NOT_FOUND', message: 'No checkins at this location yet.' } });
    await stack.redis.client.del(`ncc:user:${DEMO.id}`);
    const user = await get(`${stack.checkin.url}/api/users/${DEMO.id}/stats`, cookie);
    expect(user.status).toBe(404);
    expect(await user.json()).toMatchObject({ error: { code: 'NOT_FOUND', message: 'No such user.' } });
  });

  it('when the id in the path is not a positive whole number, then 400 naming it', async () => {
    stack = await startStack({ rounds: 4 });
    const cookie = await login(stack.auth.url);
    for (const id of ['abc', '0', '-1', '1e3', '01', '1.5', '99999999999999999', '%20']) {
      for (const kind of ['users', 'locations']) {
        const res = await get(`${stack.checkin.url}/api/${kind}/${id}/stats`, cookie);
        expect(res.status, `${kind}/${id}`).toBe(400);
        expect(await res.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', fields: ['id'] } });
      }
    }
  });
});

describe('back-pressure', () => {
  it('when the stream is at CHECKIN_STREAM_MAXLEN, then checkins get 503 with Retry-After and nothing is dropped; once processed, they are accepted again', async () => {
    stack = await startStack({ rounds: 4, checkinEnv: { CHECKIN_STREAM_MAXLEN: '3' } });
    const r = stack.redis.client;
    const cookie = await login(stack.auth.url);
    for (let i = 1; i <= 3; i++) expect((await checkin(stack.checkin.url, { userId: DEMO.id, locationId: i, starRating: 5 }, cookie)).status).toBe(202);
    const refused = await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 4, starRating: 5 }, cookie);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ error: { code: 'CHECKINS_BACKLOGGED' } });
    expect(await r.xlen(CHECKIN_STREAM)).toBe(3);
    // The refused checkin was not remembered: once there is room, the same checkin is accepted (not a duplicate).
    expect(stack.checkin.logs.find(/Checkins refused with 503: ncc:checkins is at CHECKIN_STREAM_MAXLEN/)).toHaveLength(1);
    await stack.startProcessor(FAST);
    await until('processed and trimmed', 10_000, async () => (await r.xlen(CHECKIN_STREAM)) === 0);
    expect((await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 4, starRating: 5 }, cookie)).status).toBe(202);
    await until('all four counted', 10_000, async () => (await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === '4');
  });
});
