/**
 * The checkin processor in-process on a real redis-server: effects, exactly-once under redelivery and
 * races, dead letters, claims, trimming, consumer clean-up, Redis outages. The multi-process crash
 * runs (kill -9, SIGSTOP), Redis Cluster and the lag run are in *.e2e.test.ts next to this file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appliedKey, CHECKIN_STREAM, DEAD_LETTER_STREAM, entryTime, PROCESSOR_GROUP, type CheckinEntry } from '@ncc/checkins';
import { loadConfig, ConfigError } from '@ncc/service-kit';
import { until } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, startStack } from '../../../test/support/services.js';
import { processorEnvSchema } from '../src/config.js';
import { Effects } from '../src/data-access/effects.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** Quick loops for tests: short blocking reads, trim and claim checks ten times a second. */
const FAST = { PROCESSOR_BLOCK_MS: '100', PROCESSOR_TRIM_INTERVAL_MS: '100' };

type Client = Stack['redis']['client'];

async function pending(r: Client): Promise<number> {
  const [count] = (await r.xpending(CHECKIN_STREAM, PROCESSOR_GROUP)) as [number];
  return count;
}

function entryFields(userId: number | string, locationId: number | string, starRating: number | string): (string | number)[] {
  return ['userId', userId, 'locationId', locationId, 'starRating', starRating, 'receivedAt', Date.now()];
}

async function createGroup(r: Client): Promise<void> {
  await r.xgroup('CREATE', CHECKIN_STREAM, PROCESSOR_GROUP, '0', 'MKSTREAM');
}

/** Delivers everything new to `consumer` (which then holds it, unacknowledged). */
async function deliverTo(r: Client, consumer: string): Promise<string[]> {
  const reply = (await r.xreadgroup('GROUP', PROCESSOR_GROUP, consumer, 'COUNT', 1000, 'STREAMS', CHECKIN_STREAM, '>')) as
    [string, [string, string[]][]][] | null;
  return (reply?.[0]?.[1] ?? []).map(([id]) => id);
}

const asEntry = (id: string, userId: number, locationId: number, starRating: number): CheckinEntry => ({
  id,
  time: entryTime(id),
  userId,
  locationId,
  starRating,
  receivedAt: 0,
});

describe('checkin processor: effects', () => {
  it('when checkins are accepted, then the user and location stats count each exactly once and the stream is trimmed', async () => {
    stack = await startStack({ processors: 1, processorEnv: FAST, rounds: 4 });
    const cookie = await login(stack.auth.url);
    for (const [i, starRating] of [5, 3, 4].entries()) {
      const res = await checkin(stack.checkin.url, { userId: DEMO.id, locationId: 10 + (i % 2), starRating }, cookie);
      expect(res.status).toBe(202);
    }
    const r = stack.redis.client;
    // The user's and the location's effects are two scripts: wait for both sides of all three entries.
    await until(
      'all three applied',
      10_000,
      async () =>
        (await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === '3' &&
        (await r.hget('ncc:location:10', 'numCheckins')) === '2' &&
        (await r.hget('ncc:location:11', 'numCheckins')) === '1',
    );
    expect(await r.hgetall('ncc:location:10')).toEqual({ numCheckins: '2', numStars: '9', averageStars: '5' });
    expect(await r.hgetall('ncc:location:11')).toEqual({ numCheckins: '1', numStars: '3', averageStars: '3' });
    const user = await r.hgetall(`ncc:user:${DEMO.id}`);
    // The user record auth reads stays as it was, with the course's three fields added.
    expect(user).toMatchObject({ email: DEMO.email, numCheckins: '3', lastSeenAt: '10' });
    expect(Number(user['lastCheckin'])).toBeGreaterThan(Date.now() - 60_000);
    await until('stream trimmed', 5_000, async () => (await r.xlen(CHECKIN_STREAM)) === 0);
    expect(await pending(r)).toBe(0);
    expect(await r.exists(DEAD_LETTER_STREAM)).toBe(0);
    expect(stack.processors[0]!.app.processor.counts).toMatchObject({ applied: 3, duplicate: 0, dead_lettered: 0 });
    // The user can still log in: auth ignores the added fields.
    await login(stack.auth.url);
  });

  it('when entries arrive out of order, then lastCheckin and lastSeenAt keep the latest one', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const effects = new Effects(stack.redis.client, 1000);
    expect(await effects.applyToUser(asEntry('2000-0', DEMO.id, 2, 5), 0)).toBe('applied');
    expect(await effects.applyToUser(asEntry('1000-0', DEMO.id, 1, 5), 0)).toBe('applied');
    expect(await stack.redis.client.hmget(`ncc:user:${DEMO.id}`, 'numCheckins', 'lastCheckin', 'lastSeenAt')).toEqual(['2', '2000', '2']);
  });
});

describe('checkin processor: exactly once', () => {
  it('when a processor died after applying entries and before acknowledging them, then the entries taken over count once', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    await createGroup(r);
    const full = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 5, 4));
    const half = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 6, 2));
    expect(await deliverTo(r, 'crashed')).toEqual([full, half]);
    // What the crashed processor got done: both effects of the first entry, the user's of the second.
    const effects = new Effects(r, 1000);
    await effects.applyToUser(asEntry(full!, DEMO.id, 5, 4), 0);
    await effects.applyToLocation(asEntry(full!, DEMO.id, 5, 4), 0);
    await effects.applyToUser(asEntry(half!, DEMO.id, 6, 2), 0);

    const processor = await stack.startProcessor({ ...FAST, PROCESSOR_CLAIM_IDLE_MS: '300' });
    await until('both taken over and acknowledged', 10_000, async () => (await pending(r)) === 0);
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('2');
    expect(await r.hgetall('ncc:location:5')).toEqual({ numCheckins: '1', numStars: '4', averageStars: '4' });
    expect(await r.hgetall('ncc:location:6')).toEqual({ numCheckins: '1', numStars: '2', averageStars: '2' });
    expect(processor.app.processor.counts).toMatchObject({ claimed: 2, applied: 1, duplicate: 1 });
    expect(processor.logs.find(/Claimed 2 entries pending for over 300 ms/)).toHaveLength(1);
  });

  it('when many processors apply the same entry at once, then exactly one applies it', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const entry = asEntry('1700000000000-0', DEMO.id, 9, 3);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? new Effects(stack!.redis.client, 1000).applyToUser(entry, 0) : new Effects(stack!.redis.client, 1000).applyToLocation(entry, 0),
      ),
    );
    expect(results.filter((x) => x === 'applied')).toHaveLength(2);
    expect(results.filter((x) => x === 'duplicate')).toHaveLength(18);
    expect(await stack.redis.client.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('1');
    expect(await stack.redis.client.hget('ncc:location:9', 'numStars')).toBe('3');
  });

  it('when a processor resumes with an entry acknowledged long ago by another, then it is skipped as stale and its marker is gone', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    const effects = new Effects(r, 1000);
    const old = asEntry('1000-0', DEMO.id, 1, 5);
    expect(await effects.applyToUser(old, 0)).toBe('applied');
    const marks = appliedKey(`ncc:user:${DEMO.id}`);
    expect(await r.zscore(marks, '1000-0')).toBe('1000');
    // A later entry, applied once the group's floor has passed the old one: the old marker is dropped.
    expect(await effects.applyToUser(asEntry('5000-0', DEMO.id, 2, 5), 3000)).toBe('applied');
    expect(await r.zscore(marks, '1000-0')).toBeNull();
    expect(await r.zrange(marks, 0, -1)).toEqual(['~floor', '5000-0']);
    // The stopped processor wakes up with the old entry and its own, older idea of the floor.
    expect(await effects.applyToUser(old, 0)).toBe('stale');
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('2');
  });
});

describe('checkin processor: dead letters', () => {
  it('when entries are invalid, then each goes to the dead-letter stream once with its reason and is acknowledged', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    const unknown = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(4242, 1, 3));
    const badStars = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 1, 'x'));
    const noLocation = await r.xadd(CHECKIN_STREAM, '*', 'userId', DEMO.id, 'starRating', 3, 'receivedAt', 1);
    // Extra fields (a trace id, say) are fine: the entry is valid.
    const extra = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 2, 4), 'traceparent', '00-abc-def-01');
    const processor = await stack.startProcessor(FAST);
    await until('all four handled', 10_000, async () => ((await r.xlen(DEAD_LETTER_STREAM)) === 3 && (await pending(r)) === 0) || undefined);
    // Applied concurrently, so dead-lettered in any order: sorted by the original entry id.
    const dead = (await r.xrange(DEAD_LETTER_STREAM, '-', '+')).sort(([, a], [, b]) => (a[1]! < b[1]! ? -1 : 1));
    expect(dead.map(([, fields]) => fields.slice(0, 4))).toEqual([
      ['entryId', unknown, 'reason', 'unknown user 4242'],
      ['entryId', badStars, 'reason', 'invalid field starRating'],
      ['entryId', noLocation, 'reason', 'missing field locationId'],
    ]);
    // The original fields follow, as they were.
    expect(dead[0]![1].slice(4)).toEqual(['userId', '4242', 'locationId', '1', 'starRating', '3', 'receivedAt', expect.any(String)]);
    expect(await r.exists('ncc:user:4242')).toBe(0);
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('1');
    expect(await r.hgetall('ncc:location:2')).toEqual({ numCheckins: '1', numStars: '4', averageStars: '4' });
    expect(await r.exists('ncc:location:1')).toBe(0);
    expect(processor.app.processor.counts).toMatchObject({ applied: 1, dead_lettered: 3 });
    expect(extra).toBeTruthy();
  });

  it('when an entry has been delivered more than PROCESSOR_MAX_DELIVERIES times, then it is dead-lettered instead of tried again', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    await createGroup(r);
    const id = await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 3, 5));
    await deliverTo(r, 'poisoned-1');
    // Two more consumers took it and died too (XCLAIM counts a delivery each time).
    await r.xclaim(CHECKIN_STREAM, PROCESSOR_GROUP, 'poisoned-2', 0, id!);
    await r.xclaim(CHECKIN_STREAM, PROCESSOR_GROUP, 'poisoned-3', 0, id!);
    await stack.startProcessor({ ...FAST, PROCESSOR_CLAIM_IDLE_MS: '200', PROCESSOR_MAX_DELIVERIES: '3' });
    await until('dead-lettered', 10_000, async () => ((await r.xlen(DEAD_LETTER_STREAM)) === 1 && (await pending(r)) === 0) || undefined);
    const [[, fields]] = (await r.xrange(DEAD_LETTER_STREAM, '-', '+')) as [[string, string[]]];
    expect(fields.slice(0, 4)).toEqual(['entryId', id, 'reason', 'delivered 4 times, more than PROCESSOR_MAX_DELIVERIES (3)']);
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBeNull();
  });
});

describe('checkin processor: the stream and the group', () => {
  it('when another consumer group has not acknowledged entries, then the stream is not trimmed past them', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    await r.xgroup('CREATE', CHECKIN_STREAM, 'courseReaders', '0', 'MKSTREAM');
    for (let i = 1; i <= 5; i++) await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, i, 4));
    const processor = await stack.startProcessor(FAST);
    await until('all five applied', 10_000, async () => (await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === '5');
    await until('the warning about the other group', 5_000, () => processor.logs.find(/Consumer group "courseReaders" has not acknowledged/).length > 0);
    expect(await r.xlen(CHECKIN_STREAM)).toBe(5);
    // The other group reads three and acknowledges them: exactly those three may go.
    const read = (await r.xreadgroup('GROUP', 'courseReaders', 'c', 'COUNT', 3, 'STREAMS', CHECKIN_STREAM, '>')) as [string, [string, string[]][]][];
    await until('still five while they are pending', 1_000, async () => (await r.xlen(CHECKIN_STREAM)) === 5);
    await r.xack(CHECKIN_STREAM, 'courseReaders', ...read[0]![1].map(([id]) => id));
    await until('trimmed to the two unread', 5_000, async () => (await r.xlen(CHECKIN_STREAM)) === 2);
    await r.xgroup('DESTROY', CHECKIN_STREAM, 'courseReaders');
    await until('trimmed to nothing', 5_000, async () => (await r.xlen(CHECKIN_STREAM)) === 0);
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('5');
  });

  it('when consumers have left, then they are removed from the group once nothing is pending on them', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    await createGroup(r);
    await r.xgroup('CREATECONSUMER', CHECKIN_STREAM, PROCESSOR_GROUP, 'left-empty');
    await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 1, 4));
    await deliverTo(r, 'left-holding');
    const processor = await stack.startProcessor({ ...FAST, PROCESSOR_CONSUMER: 'me', PROCESSOR_CLAIM_IDLE_MS: '300', PROCESSOR_CONSUMER_IDLE_MS: '1000' });
    const names = async (): Promise<string[]> =>
      ((await r.xinfo('CONSUMERS', CHECKIN_STREAM, PROCESSOR_GROUP)) as string[][]).map((c) => c[c.indexOf('name') + 1]!).sort();
    await until('both that left are gone', 10_000, async () => JSON.stringify(await names()) === '["me"]');
    // The one holding an entry was removed only after its entry was claimed and applied.
    expect(await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')).toBe('1');
    expect(await pending(r)).toBe(0);
    expect(processor.logs.find(/Removed \d consumer\(s\) idle for over 1000 ms with nothing pending: .*left-/).length).toBeGreaterThanOrEqual(1);
  });

  it('when two processors start together, then one creates the group, both join it and every entry is applied once', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4 });
    const r = stack.redis.client;
    const users = 25;
    for (let i = 0; i < users * 2; i++) await r.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, i + 1, (i % 5) + 1));
    const [a, b] = await Promise.all([
      stack.startProcessor({ ...FAST, PROCESSOR_BATCH_SIZE: '5' }),
      stack.startProcessor({ ...FAST, PROCESSOR_BATCH_SIZE: '5' }),
    ]);
    await until('all applied', 10_000, async () => (await r.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === String(users * 2));
    const created = [a, b].flatMap((p) => p.logs.find(/^Created consumer group/));
    const joined = [a, b].flatMap((p) => p.logs.find(/^Joined consumer group/));
    expect([created.length, joined.length]).toEqual([1, 1]);
    await until('nothing pending', 5_000, async () => (await pending(r)) === 0);
    expect(a.app.processor.counts.applied + b.app.processor.counts.applied).toBe(users * 2);
  });

  it('when Redis goes away and comes back, then the processor keeps running and applies what arrived meanwhile', async () => {
    stack = await startStack({ auths: 0, checkins: 0, rounds: 4, redis: { appendOnly: true } });
    const r = stack.redis;
    const processor = await stack.startProcessor(FAST);
    await r.client.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 1, 5));
    await until('first applied', 5_000, async () => (await r.client.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === '1');
    await r.kill();
    await until('the pause logged', 5_000, () => processor.logs.find(/Redis did not answer; checkin processing pauses/).length > 0);
    await r.start();
    await r.client.xadd(CHECKIN_STREAM, '*', ...entryFields(DEMO.id, 2, 5));
    await until('second applied', 15_000, async () => (await r.client.hget(`ncc:user:${DEMO.id}`, 'numCheckins')) === '2');
    // Logged once the step that applied it has also acknowledged it: just after the effect is visible.
    await until('the resume logged', 5_000, () => processor.logs.find(/Redis answers again; checkin processing resumes/).length > 0);
  });
});

describe('checkin processor: configuration', () => {
  it('when the blocking read would outlast the command timeout or consumers would be removed before their entries can be claimed, then start-up is refused naming the keys', () => {
    const load = (env: Record<string, string>): unknown => loadConfig(processorEnvSchema, { NODE_ENV: 'test', ...env });
    expect(() => load({ PROCESSOR_BLOCK_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '1000' })).toThrow(
      /PROCESSOR_BLOCK_MS: must be shorter than REDIS_COMMAND_TIMEOUT_MS \(1000 >= 1000\)/,
    );
    expect(() => load({ PROCESSOR_CLAIM_IDLE_MS: '60000', PROCESSOR_CONSUMER_IDLE_MS: '60000' })).toThrow(
      /PROCESSOR_CONSUMER_IDLE_MS: must be longer than PROCESSOR_CLAIM_IDLE_MS/,
    );
    expect(() => load({ PROCESSOR_CONSUMER: 'has space' })).toThrow(ConfigError);
    expect(load({})).toMatchObject({
      PROCESSOR_PORT: 8084,
      PROCESSOR_BATCH_SIZE: 100,
      PROCESSOR_BLOCK_MS: 500,
      PROCESSOR_CLAIM_IDLE_MS: 30_000,
      PROCESSOR_MAX_DELIVERIES: 5,
    });
  });
});
