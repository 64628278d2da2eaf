/**
 * The checkin processor scenario (`--only processor`; reported, no targets):
 *  - throughput: the stream pre-filled with M valid entries, then 1 or 2 processor processes drain
 *    it, timed until the group has delivered the last entry and has nothing pending (an entry is
 *    acknowledged only after its effects are applied). Rounds alternate 1, 2, 1, 2, … processes on
 *    the bench Redis, reset in between; medians are reported, since this box is noisy;
 *  - Redis commands per processed entry: INFO commandstats deltas over each drain ÷ M (commands the
 *    processor's Lua scripts run included; the bench's own XADDs and XINFO GROUPS polls subtracted);
 *  - 202 → applied: with 1 processor running, checkins through the real receiver at a steady rate,
 *    each to a location of its own, timed from the 202 to the HINCRBY that makes the location's
 *    numCheckins 1 — seen as a keyspace notification, so nothing polls Redis meanwhile.
 *
 * How a drain starts at a known instant: the processes start on an empty stream and each processes
 * a small warm-up backlog (JIT, connections, the scripts loaded into Redis); once each is blocked in
 * XREADGROUP, the M entries are queued in one MULTI (XADDs pipelined 1,000 at a time) on a connection
 * of the bench's own, and the EXEC appends them all at once and wakes the processes. The clock starts
 * when Redis has executed the XADDs (EXEC sent + their `usec` from INFO commandstats); the XADDs' own
 * calls and Redis time are taken out of the per-entry numbers. Process start-up (0.5–3 s) is not in
 * the number. (SIGSTOPping the processes while the stream filled was tried first: in one round of six
 * a processor reported Redis unavailable after SIGCONT — its blocked read had timed out in ioredis.)
 */
import { Redis } from 'ioredis';
import { appliedKey, CHECKIN_STREAM, DEAD_LETTER_STREAM, ENTRY_FIELDS, locationKey, PROCESSOR_GROUP, userKey } from '@ncc/checkins';
import { freePort, sleep, type SpawnedRedis } from '@ncc/testing';
import { fmt, log } from './format.js';
import { type Mode, processCpuSeconds, serviceArgs, type Started, startProcess } from './processes.js';
import { commandDelta, type CommandCounts, commandStats } from './redis-stats.js';
import { median } from './rounds.js';
import type { Session } from './users.js';

/** Throughput entries cycle over the seeded users and this many locations (ids from THROUGHPUT_LOCATION_BASE + 1). */
const LOCATIONS = 1_000;
const THROUGHPUT_LOCATION_BASE = 1_000_000_000;
/** The latency checkins' locations: one each, far above what the HTTP scenarios' location counter reaches. */
const LATENCY_LOCATION_BASE = 2_000_000_000;
const PREFILL_PIPELINE = 1_000;
const POLL_MS = 2;
const DRAIN_TIMEOUT_MS = 180_000;
const LATENCY_RATE = 100;

export interface ProcessorBenchOptions {
  redis: SpawnedRedis;
  /** The checkin receiver (the latency checkins go through it). */
  checkinUrl: string;
  sessions: Session[];
  mode: Mode;
  /** Extra node flags, as for the other services (--cpu-prof, --node-flags). */
  nodeFlags: string[];
  smoke: boolean;
}

/** One drain of M entries by `processors` processes. */
export interface DrainRound {
  processors: number;
  entries: number;
  seconds: number;
  perSecond: number;
  /** How long Redis took to execute the EXEC's M XADDs (their commandstats usec). */
  appendMs: number;
  /** CPU (user + system) of all processor processes during the drain, per entry. */
  processorCpuUsPerEntry: number;
  redisCpuUsPerEntry: number;
  redisCommandsPerEntry: number;
  redisPerEntry: CommandCounts;
}

export interface ThroughputSummary {
  processors: number;
  rounds: number;
  /** Median of the rounds' processed checkins/s. */
  perSecond: number;
  perSecondRuns: number[];
  /** Medians over the rounds. */
  processorCpuUsPerEntry: number;
  redisCpuUsPerEntry: number;
  redisCommandsPerEntry: number;
  /** Mean over the rounds, by command. */
  redisPerEntry: CommandCounts;
}

export interface LatencyResult {
  checkins: number;
  ratePerSecond: number;
  statuses: Record<string, number>;
  unexpected: number;
  /** From the 202 to numCheckins = 1 (0 when it was applied before the 202 arrived). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Applied before the bench had the 202 in hand (the processor's read is woken by the XADD itself). */
  appliedBeforeResponse: number;
  /** From sending the request to numCheckins = 1: what a client waits before the stats show its checkin. */
  sentToAppliedP50Ms: number;
  sentToAppliedP99Ms: number;
  /** The request itself (sent → 202), for comparison. */
  responseP50Ms: number;
  responseP99Ms: number;
}

export interface ProcessorResults {
  entriesPerRound: number;
  users: number;
  locations: number;
  order: number[];
  rounds: DrainRound[];
  throughput: ThroughputSummary[];
  latency: LatencyResult;
  /** Latency checkins that did not get a 202 (counted like the HTTP scenarios' unexpected responses). */
  unexpected: number;
}

/** Nearest-rank percentile (p in 0..1) of an ascending list. */
const percentile = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? 0;

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** The seeded users: every `ncc:user:<id>` hash with an email (the bench Redis holds only the bench's). */
async function seededUserIds(client: Redis): Promise<number[]> {
  const candidates: number[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', 'ncc:user:*', 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const match = /^ncc:user:(\d+)$/.exec(key);
      if (match) candidates.push(Number(match[1]));
    }
  } while (cursor !== '0');
  const pipeline = client.pipeline();
  for (const id of candidates) pipeline.hexists(userKey(id), 'email');
  const replies = (await pipeline.exec()) ?? [];
  const users = candidates.filter((_, i) => replies[i]?.[1] === 1).sort((a, b) => a - b);
  if (users.length === 0) throw new Error('processor bench: no seeded users (ncc:user:<id> with an email) in the bench Redis');
  return users;
}

/** Deletes the stream (and its groups), the dead letters and every effect the processor may have written for these users and locations. */
async function resetState(client: Redis, users: number[], locations: number[]): Promise<void> {
  const keys = [
    CHECKIN_STREAM,
    DEAD_LETTER_STREAM,
    appliedKey(DEAD_LETTER_STREAM),
    ...users.map((u) => appliedKey(userKey(u))),
    ...locations.flatMap((l) => [locationKey(l), appliedKey(locationKey(l))]),
  ];
  for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
  const pipeline = client.pipeline();
  for (const u of users) pipeline.hdel(userKey(u), 'numCheckins', 'lastCheckin', 'lastSeenAt');
  await pipeline.exec();
}

const throughputLocations = Array.from({ length: LOCATIONS }, (_, k) => THROUGHPUT_LOCATION_BASE + k + 1);

/** Entry `n`'s fields in the stream contract's order (userId, locationId, starRating, receivedAt): a seeded user, a valid rating. */
function entryFields(users: number[], n: number, receivedAt: number): string[] {
  const values = [String(users[n % users.length]), String(throughputLocations[n % LOCATIONS]), String(n % 6), String(receivedAt)];
  return ENTRY_FIELDS.flatMap((field, f) => [field, values[f]!]);
}

/** XADDs `count` entries in pipelines of PREFILL_PIPELINE; returns the last id. */
async function addEntries(client: Redis, users: number[], count: number, offset: number): Promise<string> {
  let last = '';
  for (let i = 0; i < count; i += PREFILL_PIPELINE) {
    const pipeline = client.pipeline();
    const receivedAt = Date.now();
    for (let k = i; k < Math.min(count, i + PREFILL_PIPELINE); k++) pipeline.xadd(CHECKIN_STREAM, '*', ...entryFields(users, offset + k, receivedAt));
    const replies = (await pipeline.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    last = String(replies[replies.length - 1]?.[1]);
  }
  return last;
}

/** Queues `count` XADDs in a MULTI on `tx` (a connection of its own), pipelined PREFILL_PIPELINE at a time; EXEC is the caller's. */
async function queueEntries(tx: Redis, users: number[], count: number, offset: number): Promise<void> {
  await tx.multi({ pipeline: false });
  for (let i = 0; i < count; i += PREFILL_PIPELINE) {
    const receivedAt = Date.now();
    const queued: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(count, i + PREFILL_PIPELINE); k++) queued.push(tx.xadd(CHECKIN_STREAM, '*', ...entryFields(users, offset + k, receivedAt)));
    await Promise.all(queued);
  }
}

/** Our group as XINFO GROUPS reports it. */
async function groupInfo(client: Redis): Promise<{ pending: number; lastDelivered: string }> {
  const groups = (await client.xinfo('GROUPS', CHECKIN_STREAM)) as (string | number)[][];
  for (const flat of groups) {
    const g: Record<string, string | number> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) g[String(flat[i])] = flat[i + 1]!;
    if (g['name'] === PROCESSOR_GROUP) return { pending: Number(g['pending']), lastDelivered: String(g['last-delivered-id']) };
  }
  return { pending: 0, lastDelivered: '' };
}

/** Polls until the group has delivered `lastId` and has nothing pending; returns how many XINFO GROUPS it sent. */
async function waitUntilApplied(client: Redis, lastId: string, processes: Started[]): Promise<number> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (let polls = 1; ; polls++) {
    const { pending, lastDelivered } = await groupInfo(client);
    if (pending === 0 && lastDelivered === lastId) return polls;
    if (Date.now() > deadline) {
      throw new Error(
        `processor bench: not drained within ${DRAIN_TIMEOUT_MS} ms (pending ${pending}, last delivered ${lastDelivered}, want ${lastId}):\n${processes.map((p) => p.output()).join('\n')}`,
      );
    }
    await sleep(POLL_MS);
  }
}

/** Waits until `n` connections are blocked in XREADGROUP (each processor waiting for entries). */
async function waitForBlockedReaders(client: Redis, n: number, processes: Started[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const list = String(await client.client('LIST'));
    const blocked = list.split('\n').filter((line) => /\scmd=xreadgroup(\s|$)/.test(line) && /\sflags=[A-Za-z]*b/.test(line)).length;
    if (blocked >= n) return;
    if (Date.now() > deadline)
      throw new Error(`processor bench: ${blocked} of ${n} processors blocked in XREADGROUP after 30 s:\n${processes.map((p) => p.output()).join('\n')}`);
    await sleep(5);
  }
}

/** What a drain cost in Redis, per entry, without the bench's own commands (its polls, the MULTI's XADDs and EXEC). */
function perEntry(delta: CommandCounts, polls: number, entries: number): CommandCounts {
  const own: CommandCounts = { 'xinfo|groups': polls, xadd: entries, exec: 1 };
  const out: CommandCounts = {};
  for (const [name, calls] of Object.entries(delta)) {
    const n = calls - (own[name] ?? 0);
    if (n > 0) out[name] = n / entries;
  }
  return out;
}

const total = (counts: CommandCounts): number => Object.values(counts).reduce((a, b) => a + b, 0);

class ProcessorBench {
  constructor(
    private readonly options: ProcessorBenchOptions,
    private readonly users: number[],
  ) {}

  private get client(): Redis {
    return this.options.redis.client;
  }

  private redisCpu(): number {
    const { pid } = this.options.redis;
    return pid === undefined ? 0 : processCpuSeconds(pid);
  }

  /** `n` processor processes (production mode, as the other services), each its own consumer. */
  async startProcessors(n: number, label: string): Promise<Started[]> {
    const { redis, mode, nodeFlags } = this.options;
    const passThrough = Object.fromEntries(
      Object.entries(process.env).filter(([k, v]) => /^PROCESSOR_/.test(k) && !/^PROCESSOR_(PORT|CONSUMER)$/.test(k) && v !== undefined),
    ) as Record<string, string>;
    return Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const port = await freePort();
        return startProcess(
          `processor-${label}-${k + 1}`,
          [...nodeFlags, ...serviceArgs('processor', mode)],
          {
            NODE_ENV: 'production',
            LOG_LEVEL: 'warn',
            REDIS_URL: redis.url,
            HOST: '127.0.0.1',
            ...passThrough,
            PROCESSOR_PORT: String(port),
            PROCESSOR_CONSUMER: `bench-${label}-${k + 1}`,
          },
          port,
        );
      }),
    );
  }

  /** One drain of `entries` by `n` fresh processes on a reset stream. */
  async drain(n: number, entries: number, label: string): Promise<DrainRound> {
    const { client, users } = this;
    await resetState(client, users, throughputLocations);
    await client.xgroup('CREATE', CHECKIN_STREAM, PROCESSOR_GROUP, '0', 'MKSTREAM');
    const processes = await this.startProcessors(n, label);
    const warmUp = Math.min(1_000, Math.max(50, Math.floor(entries / 10)));
    try {
      // Warm-up: JIT, connections, the scripts loaded into Redis (the first EVALSHAs fall back to EVAL).
      const warmLast = await addEntries(client, users, warmUp, 0);
      await waitUntilApplied(client, warmLast, processes);
      const tx = new Redis(this.options.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      tx.on('error', () => undefined);
      let replies: [Error | null, unknown][];
      let before: Awaited<ReturnType<typeof commandStats>>;
      let cpu0: number;
      let redisCpu0: number;
      let sent: number;
      try {
        await tx.connect();
        await queueEntries(tx, users, entries, 1_000_000);
        // Every process idle, waiting for entries, when the EXEC lands.
        await waitForBlockedReaders(client, n, processes);
        before = await commandStats(client);
        cpu0 = processes.reduce((sum, p) => sum + p.cpuSeconds(), 0);
        redisCpu0 = this.redisCpu();
        sent = performance.now();
        replies = (await tx.exec()) ?? [];
      } finally {
        tx.disconnect();
      }
      for (const [err] of replies) if (err) throw err;
      const lastId = String(replies[replies.length - 1]?.[1]);
      const polls = await waitUntilApplied(client, lastId, processes);
      const done = performance.now();
      const cpu = processes.reduce((sum, p) => sum + p.cpuSeconds(), 0) - cpu0;
      const redisCpuUsed = this.redisCpu() - redisCpu0;
      const after = await commandStats(client);
      const appendMs = ((after.usec['xadd'] ?? 0) - (before.usec['xadd'] ?? 0)) / 1000;
      // The drain starts once Redis has run the EXEC's XADDs (the processes are woken right after).
      const seconds = (done - sent - appendMs) / 1000;
      const delta = perEntry(commandDelta(before.calls, after.calls), polls, entries);
      await this.checkApplied(warmUp + entries);
      if (processes.some((p) => p.output().includes('Redis did not answer; checkin processing pauses')))
        log(`  processor ×${n}: a processor saw Redis as unavailable during the round; its numbers are perturbed.`);
      const row: DrainRound = {
        processors: n,
        entries,
        seconds,
        perSecond: entries / seconds,
        appendMs,
        processorCpuUsPerEntry: (cpu * 1e6) / entries,
        redisCpuUsPerEntry: (Math.max(0, redisCpuUsed - appendMs / 1000) * 1e6) / entries,
        redisCommandsPerEntry: total(delta),
        redisPerEntry: delta,
      };
      log(
        `  processor ×${n}: ${fmt(row.perSecond)} checkins/s (${fmt(entries)} in ${seconds.toFixed(2)} s; the EXEC's XADDs took ${fmt(appendMs, 1)} ms), ` +
          `${fmt(row.processorCpuUsPerEntry, 1)} µs processor CPU + ${fmt(row.redisCpuUsPerEntry, 1)} µs Redis CPU per entry, ${row.redisCommandsPerEntry.toFixed(2)} Redis cmds/entry`,
      );
      return row;
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
    }
  }

  /** Every entry counted on its user exactly once, nothing dead-lettered. */
  private async checkApplied(expected: number): Promise<void> {
    const pipeline = this.client.pipeline();
    for (const u of this.users) pipeline.hget(userKey(u), 'numCheckins');
    const counted = ((await pipeline.exec()) ?? []).reduce((s, [, v]) => s + Number(v ?? 0), 0);
    const dead = await this.client.xlen(DEAD_LETTER_STREAM);
    if (counted !== expected || dead !== 0)
      throw new Error(`processor bench: ${counted} checkins counted on the users (want ${expected}), ${dead} dead-lettered (want 0)`);
  }

  /** Checkins through the receiver at LATENCY_RATE/s with 1 processor: 202 → numCheckins = 1. */
  async latency(count: number): Promise<LatencyResult> {
    const { client, users } = this;
    const { redis, checkinUrl, sessions } = this.options;
    const warmUp = 20;
    const locations = Array.from({ length: warmUp + count }, (_, i) => LATENCY_LOCATION_BASE + i + 1);
    await resetState(client, users, locations);
    const [processor] = await this.startProcessors(1, 'latency');
    const subscriber = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    subscriber.on('error', () => undefined);
    const [, previous = ''] = (await client.config('GET', 'notify-keyspace-events')) as string[];
    const appliedAt = new Map<string, number>();
    try {
      await waitForBlockedReaders(client, 1, [processor!]);
      await subscriber.connect();
      subscriber.on('message', (_channel: string, key: string) => {
        if (!appliedAt.has(key)) appliedAt.set(key, performance.now());
      });
      // Hash events by name: the location script's first HINCRBY is numCheckins (0 → 1 here).
      await client.config('SET', 'notify-keyspace-events', 'Eh');
      await subscriber.subscribe('__keyevent@0__:hincrby');

      const send = async (i: number): Promise<{ key: string; status: number; sentAt: number; respondedAt: number }> => {
        const session = sessions[i % sessions.length]!;
        const body = JSON.stringify({ userId: session.userId, locationId: locations[i], starRating: i % 6 });
        const sentAt = performance.now();
        try {
          const res = await fetch(`${checkinUrl}/api/checkin`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', cookie: session.cookie },
            body,
          });
          const respondedAt = performance.now();
          await res.arrayBuffer();
          return { key: locationKey(locations[i]!), status: res.status, sentAt, respondedAt };
        } catch {
          return { key: locationKey(locations[i]!), status: 0, sentAt, respondedAt: performance.now() };
        }
      };
      for (let i = 0; i < warmUp; i++) await send(i);
      const pending: ReturnType<typeof send>[] = [];
      const start = performance.now();
      for (let k = 0; k < count; k++) {
        await sleep(start + (k * 1000) / LATENCY_RATE - performance.now());
        pending.push(send(warmUp + k));
      }
      const samples = await Promise.all(pending);
      const accepted = samples.filter((s) => s.status === 202);
      const deadline = Date.now() + 15_000;
      while (accepted.some((s) => !appliedAt.has(s.key))) {
        if (Date.now() > deadline)
          throw new Error(`processor bench: ${accepted.filter((s) => !appliedAt.has(s.key)).length} accepted checkins not applied within 15 s`);
        await sleep(10);
      }
      const counts = await Promise.all(accepted.map((s) => client.hget(s.key, 'numCheckins')));
      if (counts.some((c) => c !== '1'))
        throw new Error(`processor bench: a latency location has numCheckins ≠ 1 (${counts.filter((c) => c !== '1').join(', ')})`);
      const statuses: Record<string, number> = {};
      for (const s of samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
      const latencies = accepted.map((s) => Math.max(0, appliedAt.get(s.key)! - s.respondedAt)).sort((a, b) => a - b);
      const responses = samples.map((s) => s.respondedAt - s.sentAt).sort((a, b) => a - b);
      const sentToApplied = accepted.map((s) => appliedAt.get(s.key)! - s.sentAt).sort((a, b) => a - b);
      const result: LatencyResult = {
        checkins: count,
        ratePerSecond: LATENCY_RATE,
        statuses,
        unexpected: count - accepted.length,
        p50Ms: round2(percentile(latencies, 0.5)),
        p99Ms: round2(percentile(latencies, 0.99)),
        maxMs: round2(latencies[latencies.length - 1] ?? 0),
        appliedBeforeResponse: accepted.filter((s) => appliedAt.get(s.key)! <= s.respondedAt).length,
        sentToAppliedP50Ms: round2(percentile(sentToApplied, 0.5)),
        sentToAppliedP99Ms: round2(percentile(sentToApplied, 0.99)),
        responseP50Ms: round2(percentile(responses, 0.5)),
        responseP99Ms: round2(percentile(responses, 0.99)),
      };
      log(
        `  processor 202 → applied: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms (${count} checkins at ${LATENCY_RATE}/s; ` +
          `${result.appliedBeforeResponse} applied before the 202 arrived; sent → applied p50 ${result.sentToAppliedP50Ms} ms, p99 ${result.sentToAppliedP99Ms} ms; the 202 itself p50 ${result.responseP50Ms} ms, p99 ${result.responseP99Ms} ms)`,
      );
      return result;
    } finally {
      await client.config('SET', 'notify-keyspace-events', previous);
      subscriber.disconnect();
      await processor?.stop();
    }
  }
}

function summarise(rounds: DrainRound[], processors: number): ThroughputSummary {
  const mine = rounds.filter((r) => r.processors === processors);
  const byCommand: CommandCounts = {};
  for (const r of mine) for (const [name, n] of Object.entries(r.redisPerEntry)) byCommand[name] = (byCommand[name] ?? 0) + n / mine.length;
  return {
    processors,
    rounds: mine.length,
    perSecond: median(mine.map((r) => r.perSecond)),
    perSecondRuns: mine.map((r) => r.perSecond),
    processorCpuUsPerEntry: median(mine.map((r) => r.processorCpuUsPerEntry)),
    redisCpuUsPerEntry: median(mine.map((r) => r.redisCpuUsPerEntry)),
    redisCommandsPerEntry: median(mine.map((r) => r.redisCommandsPerEntry)),
    redisPerEntry: byCommand,
  };
}

/**
 * The whole scenario on the bench Redis (its stream, groups and the processor's effects are reset
 * first; the seeded users stay). Normally 20,000 entries per drain in rounds of 1, 2, 1, 2, 1, 2
 * processes and 300 latency checkins; with --smoke 300 entries, one round each, 50 checkins.
 */
export async function runProcessorScenario(options: ProcessorBenchOptions): Promise<ProcessorResults> {
  const users = await seededUserIds(options.redis.client);
  const bench = new ProcessorBench(options, users);
  const entries = options.smoke ? 300 : 20_000;
  const order = options.smoke ? [1, 2] : [1, 2, 1, 2, 1, 2];
  const latencyCheckins = options.smoke ? 50 : 300;
  log(`processor: ${fmt(entries)} entries per drain, rounds of ${order.join(', ')} processes, then ${latencyCheckins} checkins for 202 → applied`);
  const rounds: DrainRound[] = [];
  for (const [i, n] of order.entries()) rounds.push(await bench.drain(n, entries, `r${i + 1}`));
  const latency = await bench.latency(latencyCheckins);
  return {
    entriesPerRound: entries,
    users: users.length,
    locations: LOCATIONS,
    order,
    rounds,
    throughput: [...new Set(order)].sort((a, b) => a - b).map((n) => summarise(rounds, n)),
    latency,
    unexpected: latency.unexpected,
  };
}
