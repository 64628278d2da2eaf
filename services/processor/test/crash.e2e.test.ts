/**
 * `pnpm processor` replicas as real processes, crashing while checkins arrive through the receiver:
 * one killed (-9) while it holds entries, another stopped (SIGSTOP) holding entries for longer than
 * PROCESSOR_CLAIM_IDLE_MS and then let go on, bad entries written straight into ncc:checkins — and a
 * graceful stop (SIGTERM) and restart mid-run. Afterwards Redis must hold exactly the statistics of
 * the 202s: nothing lost, nothing counted twice, only the bad entries dead-lettered, nothing pending,
 * the stream trimmed to nothing and the dead consumer gone from the group.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKIN_STREAM, DEAD_LETTER_STREAM } from '@ncc/checkins';
import { sleep, until } from '@ncc/testing';
import { type Stack, startStack } from '../../../test/support/services.js';
import {
  acceptedAfter,
  appliedTotal,
  claimedInLog,
  consumerNames,
  deadLetters,
  expectExactStatistics,
  killAll,
  type Load,
  loginAll,
  pendingCount,
  pendingOn,
  type Processor,
  RECEIVER_ENV,
  spawnProcessor,
  startLoad,
  stopHoldingEntries,
  streamState,
  testUsers,
} from './support.js';

/** Longer than PROCESSOR_CLAIM_IDLE_MS (1000 in QUICK), shorter than PROCESSOR_CONSUMER_IDLE_MS (3000). */
const STOPPED_MS = 2500;

describe('when one processor is killed (-9) and another stopped for 2.5 s while checkins and bad entries arrive', () => {
  const users = testUsers(20);
  let stack: Stack;
  const processors: Processor[] = [];
  let killed: Processor;
  let stopped: Processor;
  let survivor: Processor;
  let load: Load;
  const chaos = {
    heldByKilled: [] as string[],
    killedExit: undefined as number | string | undefined,
    heldByStopped: [] as string[],
    /** What was still pending on each when the stopped one was let go on. */
    killedHoldsAtResume: [] as string[],
    stoppedHoldsAtResume: [] as string[],
    resumedAt: 0,
    injected: [] as { id: string; fields: string[]; reason: string }[],
  };

  beforeAll(async () => {
    stack = await startStack({ users, rounds: 4, checkinEnv: RECEIVER_ENV });
    const cookies = await loginAll(stack.auth.url, users);
    const r = stack.redis.client;
    processors.push(...(await Promise.all(['proc-a', 'proc-b', 'proc-c'].map((name) => spawnProcessor(name, { REDIS_URL: stack.redis.url })))));
    [killed, stopped, survivor] = processors as [Processor, Processor, Processor];

    let chaosOver = false;
    // Checkins keep arriving until a second after the stopped processor is let go on, 500 at least.
    load = startLoad({
      checkinUrl: stack.checkin.url,
      users,
      cookies,
      stopWhen: (l) => (chaosOver && (l.accepted.at(-1)?.sentAt ?? 0) > chaos.resumedAt + 1000 && l.sent() >= 500) || l.sent() >= 1400,
    });
    try {
      await until('checkins accepted and applied', 20_000, async () => load.accepted.length >= 100 && (await appliedTotal(r, users)) > 0);
      // Stopped first, so that it dies holding entries (a kill at a random instant may find it between batches).
      chaos.heldByKilled = await stopHoldingEntries(killed, r);
      chaos.killedExit = await killed.stop('SIGKILL');

      const bad: [string[], string][] = [
        [['userId', '999999', 'locationId', '999', 'starRating', '3', 'receivedAt', String(Date.now())], 'unknown user 999999'],
        [['userId', String(users[0]!.id), 'locationId', '998', 'starRating', 'x', 'receivedAt', String(Date.now())], 'invalid field starRating'],
        [['userId', String(users[1]!.id), 'starRating', '3', 'receivedAt', String(Date.now())], 'missing field locationId'],
      ];
      for (const [fields, reason] of bad) chaos.injected.push({ id: (await r.xadd(CHECKIN_STREAM, '*', ...fields))!, fields, reason });

      chaos.heldByStopped = await stopHoldingEntries(stopped, r);
      // The time is the subject: longer than the claim idle time, with checkins arriving meanwhile.
      await sleep(STOPPED_MS);
      chaos.killedHoldsAtResume = await pendingOn(r, killed.name);
      chaos.stoppedHoldsAtResume = await pendingOn(r, stopped.name);
      stopped.child.kill('SIGCONT');
      chaos.resumedAt = performance.now();
    } finally {
      chaosOver = true;
      await load.done;
    }
  }, 60_000);

  afterAll(async () => {
    await killAll(processors);
    await stack?.close();
  });

  it('then every 202 is counted exactly once in its user and its location, and nothing is left pending', async () => {
    const r = stack.redis.client;
    console.log(
      'processor crash run:',
      JSON.stringify({
        accepted: load.accepted.length,
        'held by the killed one': chaos.heldByKilled.length,
        'held by the stopped one': chaos.heldByStopped.length,
        'accepted after it was let go on': load.accepted.filter((a) => a.sentAt > chaos.resumedAt).length,
        claimed: { [stopped.name]: claimedInLog(stopped.output()), [survivor.name]: claimedInLog(survivor.output()) },
      }),
    );
    expect(load.refused).toEqual([]);
    expect(load.accepted.length).toBeGreaterThanOrEqual(500);
    // The chaos happened while checkins were arriving, not after.
    expect(load.accepted.filter((a) => a.sentAt > chaos.resumedAt).length).toBeGreaterThan(0);
    await until('nothing pending', 20_000, async () => (await pendingCount(r)) === 0);
    await expectExactStatistics(r, users, load.accepted);
  });

  it('then exactly the three bad entries are in ncc:checkins:dead, each with its entry id, its reason and its fields as written', async () => {
    const r = stack.redis.client;
    await until('three dead letters', 10_000, async () => (await r.xlen(DEAD_LETTER_STREAM)) >= 3);
    expect(await r.xlen(DEAD_LETTER_STREAM)).toBe(3);
    expect(await deadLetters(r)).toEqual(chaos.injected.map(({ id, fields, reason }) => ['entryId', id, 'reason', reason, ...fields]));
    // None of them touched a statistic.
    expect(await r.exists('ncc:user:999999', 'ncc:location:999', 'ncc:location:998')).toBe(0);
  });

  it('then what the killed and the stopped processor held was claimed by the others, and the killed one is removed from the group', async () => {
    const r = stack.redis.client;
    expect(chaos.killedExit).toBe('SIGKILL');
    expect(chaos.heldByKilled.length).toBeGreaterThan(0);
    expect(chaos.heldByStopped.length).toBeGreaterThan(0);
    // Taken over while the one was dead and the other stopped: nothing held on either any more.
    expect(chaos.killedHoldsAtResume).toEqual([]);
    expect(chaos.stoppedHoldsAtResume).toEqual([]);
    const claimed = claimedInLog(stopped.output()) + claimedInLog(survivor.output());
    expect(claimed).toBeGreaterThanOrEqual(chaos.heldByKilled.length + chaos.heldByStopped.length);
    expect(survivor.output()).toMatch(/Claimed \d+ entries pending for over 1000 ms on other consumers\./);

    await until(
      'the killed consumer removed from the group',
      15_000,
      async () => JSON.stringify(await consumerNames(r)) === JSON.stringify([stopped.name, survivor.name]),
    );
    expect(stopped.output() + survivor.output()).toMatch(/Removed \d+ consumer\(s\) idle for over 3000 ms with nothing pending: [^\n]*proc-a/);
    // The stopped one is back at work, not crashed.
    expect([stopped.child.exitCode, survivor.child.exitCode]).toEqual([null, null]);
  });

  it('then ncc:checkins is trimmed to nothing and, with everything settled, still nothing is counted twice', async () => {
    const r = stack.redis.client;
    await until('ncc:checkins trimmed to nothing', 15_000, async () => (await r.xlen(CHECKIN_STREAM)) === 0);
    expect(await pendingCount(r)).toBe(0);
    await expectExactStatistics(r, users, load.accepted);
  });
});

describe('when a processor is stopped with SIGTERM mid-run and started again', () => {
  const users = testUsers(10, 2001);
  let stack: Stack;
  const processors: Processor[] = [];

  beforeAll(async () => {
    stack = await startStack({ users, rounds: 4, checkinEnv: RECEIVER_ENV });
  });

  afterAll(async () => {
    await killAll(processors);
    await stack?.close();
  });

  it('then it exits 0 with nothing pending on it, checkins wait in the stream meanwhile, and after the restart each counts exactly once', async () => {
    const r = stack.redis.client;
    const cookies = await loginAll(stack.auth.url, users);
    const first = await spawnProcessor('proc-t', { REDIS_URL: stack.redis.url });
    processors.push(first);
    let restartedAt = Infinity;
    const load = startLoad({
      checkinUrl: stack.checkin.url,
      users,
      cookies,
      stopWhen: (l) => (l.accepted.at(-1)?.sentAt ?? 0) > restartedAt + 1000 || l.sent() >= 700,
    });
    try {
      await until('checkins accepted and applied', 20_000, async () => load.accepted.length >= 60 && (await appliedTotal(r, users)) >= 20);

      expect(await first.stop('SIGTERM')).toBe(0);
      expect(first.output()).toContain('SIGTERM received, shutting down gracefully.');
      expect(first.output()).toContain('Shutdown complete.');
      // It finished the batch in hand and acknowledged it.
      expect(await pendingOn(r, 'proc-t')).toEqual([]);
      const appliedAtStop = await appliedTotal(r, users);
      const atStop = await streamState(r);

      // No processor runs: checkins are accepted and wait in the stream, untouched.
      await until('more checkins accepted', 10_000, () => acceptedAfter(load.accepted, atStop.lastId).length >= 30);
      const since = acceptedAfter(load.accepted, atStop.lastId).length;
      expect(await r.xlen(CHECKIN_STREAM)).toBeGreaterThanOrEqual(atStop.length + since);
      expect(await appliedTotal(r, users)).toBe(appliedAtStop);

      const second = await spawnProcessor('proc-t', { REDIS_URL: stack.redis.url });
      processors.push(second);
      restartedAt = performance.now();
      await until('the restarted processor joined the group', 10_000, () =>
        /Joined consumer group checkinProcessors on ncc:checkins as consumer proc-t\./.test(second.output()),
      );
    } finally {
      restartedAt = Math.min(restartedAt, performance.now());
      await load.done;
    }

    expect(load.refused).toEqual([]);
    await until('everything processed and the stream trimmed', 20_000, async () => (await pendingCount(r)) === 0 && (await r.xlen(CHECKIN_STREAM)) === 0);
    await expectExactStatistics(r, users, load.accepted);
    expect(await r.exists(DEAD_LETTER_STREAM)).toBe(0);
  }, 60_000);
});
