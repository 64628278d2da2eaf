/**
 * The processor at scale, as real processes: on a 3-master Redis Cluster (the stream on one node, the
 * statistics spread over all three, one replica killed mid-run and replaced), and falling behind —
 * every replica stopped while checkins keep arriving, so the backlog grows untrimmed, then caught up
 * with exact counts.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKIN_STREAM, DEAD_LETTER_STREAM } from '@ncc/checkins';
import { sleep, until } from '@ncc/testing';
import { createUsers, type Stack, startAuth, startCheckin, type StartedService, startStack } from '../../../test/support/services.js';
import { type LocalCluster, startCluster } from '../../../test/scale/topology.js';
import {
  type Accepted,
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
  type Processor,
  RECEIVER_ENV,
  spawnProcessor,
  startLoad,
  stopHoldingEntries,
  streamState,
  testUsers,
} from './support.js';

describe('when two processors consume checkins on a 3-master Redis Cluster and one is killed (-9) and replaced mid-run', () => {
  const users = testUsers(20, 3001);
  let cluster: LocalCluster;
  let env: Record<string, string>;
  let client: Cluster;
  const services: StartedService[] = [];
  const processors: Processor[] = [];
  let load: Load;
  let heldByKilled: string[] = [];
  let badId = '';
  let replacedAt = 0;

  beforeAll(async () => {
    cluster = await startCluster();
    env = { REDIS_CLUSTER_NODES: cluster.nodes };
    client = new Cluster(cluster.masters.map((m) => ({ host: '127.0.0.1', port: m.port })));
    await createUsers(env, users, { rounds: 4 });
    // In-process services share the test's event loop on a busy machine: a generous command timeout (as in cluster.test.ts).
    const [auth, receiver] = await Promise.all([
      startAuth('', { ...env, REDIS_COMMAND_TIMEOUT_MS: '3000' }),
      startCheckin('', { ...env, REDIS_COMMAND_TIMEOUT_MS: '3000', ...RECEIVER_ENV }),
    ]);
    services.push(auth, receiver);
    const cookies = await loginAll(auth.url, users);
    processors.push(...(await Promise.all(['proc-x', 'proc-y'].map((name) => spawnProcessor(name, env)))));
    const [killed] = processors as [Processor, Processor];

    let chaosOver = false;
    load = startLoad({
      checkinUrl: receiver.url,
      users,
      cookies,
      stopWhen: (l) => (chaosOver && (l.accepted.at(-1)?.sentAt ?? 0) > replacedAt + 1000 && l.sent() >= 400) || l.sent() >= 1400,
    });
    try {
      await until('checkins accepted and applied', 20_000, async () => load.accepted.length >= 100 && (await appliedTotal(client, users)) > 0);
      heldByKilled = await stopHoldingEntries(killed, client);
      await killed.stop('SIGKILL');
      badId = (await client.xadd(CHECKIN_STREAM, '*', 'userId', '999999', 'locationId', '1', 'starRating', '4', 'receivedAt', String(Date.now())))!;
      // What a supervisor does: a fresh replica (a new consumer name, as hostname-pid would be).
      processors.push(await spawnProcessor('proc-z', env));
      replacedAt = performance.now();
    } finally {
      chaosOver = true;
      replacedAt ||= performance.now();
      await load.done;
    }
  }, 60_000);

  afterAll(async () => {
    await killAll(processors);
    await Promise.all(services.map((s) => s.close()));
    client?.disconnect();
    await cluster?.stop();
  });

  it('then every 202 is counted exactly once, read through a Cluster client, with nothing pending and the stream trimmed', async () => {
    expect(load.refused).toEqual([]);
    expect(load.accepted.length).toBeGreaterThanOrEqual(400);
    expect(load.accepted.filter((a) => a.sentAt > replacedAt).length).toBeGreaterThan(0);
    await until(
      'nothing pending and ncc:checkins trimmed',
      20_000,
      async () => (await pendingCount(client)) === 0 && (await client.xlen(CHECKIN_STREAM)) === 0,
    );
    await expectExactStatistics(client, users, load.accepted);
    expect(await deadLetters(client)).toEqual([
      [
        'entryId',
        badId,
        'reason',
        'unknown user 999999',
        'userId',
        '999999',
        'locationId',
        '1',
        'starRating',
        '4',
        'receivedAt',
        expect.stringMatching(/^\d+$/),
      ],
    ]);
  });

  it('then the statistics live on every master, and the killed replica’s entries were claimed and it left the group', async () => {
    // Each master holds some of the user and location hashes: the effects ran on three nodes, not one.
    const perMaster = await Promise.all(
      cluster.masters.map(async (m) => (await m.client.keys('ncc:user:*')).length + (await m.client.keys('ncc:location:*')).length),
    );
    expect(
      perMaster.every((n) => n > 0),
      JSON.stringify(perMaster),
    ).toBe(true);
    expect(heldByKilled.length).toBeGreaterThan(0);
    const [, survivor, replacement] = processors as [Processor, Processor, Processor];
    expect(claimedInLog(survivor.output()) + claimedInLog(replacement.output())).toBeGreaterThanOrEqual(heldByKilled.length);
    await until('the killed consumer removed from the group', 15_000, async () => JSON.stringify(await consumerNames(client)) === '["proc-y","proc-z"]');
    expect(await client.xlen(DEAD_LETTER_STREAM)).toBe(1);
  });
});

describe('when every processor is stopped for 3 s while checkins keep arriving', () => {
  const users = testUsers(10, 4001);
  let stack: Stack;
  const processors: Processor[] = [];
  let load: Load;
  const window = {
    lengthAtStop: 0,
    lengthAtResume: 0,
    appliedAtStop: 0,
    appliedAtResume: 0,
    /** 202s for entries added after the stop, answered before the length was read again. */
    accepted: [] as Accepted[],
    missing: [] as string[],
    resumedAt: 0,
  };

  beforeAll(async () => {
    stack = await startStack({ users, rounds: 4, checkinEnv: RECEIVER_ENV });
    const r = stack.redis.client;
    const cookies = await loginAll(stack.auth.url, users);
    // Consumers are not removed while stopped here: the subject is the backlog, not the clean-up.
    processors.push(
      ...(await Promise.all(
        ['proc-l1', 'proc-l2'].map((name) => spawnProcessor(name, { REDIS_URL: stack.redis.url }, { PROCESSOR_CONSUMER_IDLE_MS: '60000' })),
      )),
    );
    let chaosOver = false;
    load = startLoad({
      checkinUrl: stack.checkin.url,
      users,
      cookies,
      stopWhen: (l) => (chaosOver && (l.accepted.at(-1)?.sentAt ?? 0) > window.resumedAt + 1000) || l.sent() >= 700,
    });
    try {
      await until('checkins accepted and applied', 20_000, async () => load.accepted.length >= 50 && (await appliedTotal(r, users)) > 0);
      for (const p of processors) p.child.kill('SIGSTOP');
      const atStop = await streamState(r);
      window.lengthAtStop = atStop.length;
      window.appliedAtStop = await appliedTotal(r, users);
      // The time is the subject: a few seconds of checkins with nobody processing them.
      await sleep(3000);
      // Entries added after the stop and answered before the length is read again: all in that length.
      const answered = acceptedAfter(load.accepted, atStop.lastId);
      window.lengthAtResume = await r.xlen(CHECKIN_STREAM);
      window.appliedAtResume = await appliedTotal(r, users);
      window.accepted = answered;
      const kept = new Set((await r.xrange(CHECKIN_STREAM, '-', '+')).map(([id]) => id));
      window.missing = window.accepted.filter((a) => !kept.has(a.id)).map((a) => a.id);
      for (const p of processors) p.child.kill('SIGCONT');
      window.resumedAt = performance.now();
    } finally {
      chaosOver = true;
      for (const p of processors) p.child.kill('SIGCONT');
      await load.done;
    }
  }, 60_000);

  afterAll(async () => {
    await killAll(processors);
    await stack?.close();
  });

  it('then ncc:checkins grows by at least what was accepted meanwhile: nothing applied, nothing trimmed', () => {
    console.log('processor lag run:', JSON.stringify({ ...window, accepted: window.accepted.length, total: load.accepted.length }));
    expect(window.accepted.length).toBeGreaterThanOrEqual(50);
    expect(window.lengthAtResume - window.lengthAtStop).toBeGreaterThanOrEqual(window.accepted.length);
    expect(window.missing).toEqual([]);
    expect(window.appliedAtResume).toBe(window.appliedAtStop);
  });

  it('then, let go on, they catch up: every 202 counted exactly once, nothing pending, the stream trimmed to nothing', async () => {
    const r = stack.redis.client;
    expect(load.refused).toEqual([]);
    expect(load.accepted.filter((a) => a.sentAt > window.resumedAt).length).toBeGreaterThan(0);
    await until('nothing pending and ncc:checkins trimmed', 20_000, async () => (await pendingCount(r)) === 0 && (await r.xlen(CHECKIN_STREAM)) === 0);
    await expectExactStatistics(r, users, load.accepted);
    expect(await r.exists(DEAD_LETTER_STREAM)).toBe(0);
    expect(processors.map((p) => p.child.exitCode)).toEqual([null, null]);
  });
});
