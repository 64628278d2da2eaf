/**
 * Shared by the processor's e2e files: spawned `pnpm processor` replicas, a paced checkin load
 * through the real receiver that remembers every 202, and the exact statistics those 202s must
 * produce in Redis (standalone or Cluster).
 */
import { Cluster } from 'ioredis';
import { expect } from 'vitest';
import { CHECKIN_STREAM, DEAD_LETTER_STREAM, entryTime, PROCESSOR_GROUP } from '@ncc/checkins';
import type { RedisClient } from '@ncc/service-kit';
import { sleep, until } from '@ncc/testing';
import { checkin, login, type ServiceProcess, spawnService, type TestUser } from '../../../test/support/services.js';

/** Small batches and quick loops, so that a few seconds of checkins cross many batches, claims and trims. */
export const QUICK: Record<string, string> = {
  PROCESSOR_BATCH_SIZE: '10',
  PROCESSOR_BLOCK_MS: '100',
  PROCESSOR_CLAIM_IDLE_MS: '1000',
  PROCESSOR_TRIM_INTERVAL_MS: '200',
  PROCESSOR_CONSUMER_IDLE_MS: '3000',
};

/** The receiver's per-user rate limit is not the subject here: a user sends dozens of checkins a second. */
export const RECEIVER_ENV: Record<string, string> = { CHECKIN_RATE_LIMIT_PER_USER: '100000' };

export function testUsers(count: number, firstId = 1001): TestUser[] {
  return Array.from({ length: count }, (_, i) => ({ id: firstId + i, email: `load${firstId + i}@example.com`, password: `pw-${firstId + i}` }));
}

export async function loginAll(authUrl: string, users: readonly TestUser[]): Promise<Map<number, string>> {
  const cookies = await Promise.all(users.map(async (u) => [u.id, await login(authUrl, u.email, u.password)] as const));
  return new Map(cookies);
}

export interface Processor extends ServiceProcess {
  /** Its consumer name in the group (PROCESSOR_CONSUMER). */
  name: string;
}

/** `pnpm processor` as a child process, on `redis` (REDIS_URL or REDIS_CLUSTER_NODES), once it listens. */
export async function spawnProcessor(name: string, redis: Record<string, string>, env: Record<string, string> = {}): Promise<Processor> {
  const service = await spawnService('processor', { ...redis, ...QUICK, PROCESSOR_CONSUMER: name, ...env });
  return Object.assign(service, { name });
}

/** Gone for good, whatever state it is in (a stopped process is killed too). */
export async function killAll(processors: readonly ServiceProcess[]): Promise<void> {
  await Promise.all(processors.map((p) => p.stop('SIGKILL')));
}

type Client = RedisClient;

/** XPENDING summary: entries delivered to the group and not acknowledged. */
export async function pendingCount(client: Client): Promise<number> {
  const [count] = (await client.xpending(CHECKIN_STREAM, PROCESSOR_GROUP)) as [number];
  return Number(count);
}

/** The ids pending on one consumer. */
export async function pendingOn(client: Client, consumer: string): Promise<string[]> {
  const rows = (await client.xpending(CHECKIN_STREAM, PROCESSOR_GROUP, '-', '+', 10_000, consumer)) as [string, string, number, number][];
  return rows.map(([id]) => id);
}

/** XINFO CONSUMERS: the names in the group, sorted. */
export async function consumerNames(client: Client): Promise<string[]> {
  const rows = (await client.xinfo('CONSUMERS', CHECKIN_STREAM, PROCESSOR_GROUP)) as string[][];
  return rows.map((c) => c[c.indexOf('name') + 1]!).sort();
}

/**
 * SIGSTOP `processor` at a moment it holds entries (delivered, not acknowledged), and return their ids.
 * Stopped while blocked in XREADGROUP it is handed the next entries anyway (Redis serves the blocked
 * read); stopped between an XACK and its next read it holds nothing and never will, so it is let go
 * on and stopped again. The hold is read twice, so an XACK it sent just before stopping has landed.
 */
export async function stopHoldingEntries(processor: Processor, client: Client, timeoutMs = 15_000): Promise<string[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    processor.child.kill('SIGSTOP');
    const held = await until(`${processor.name} holding entries`, 1000, async () => (await pendingOn(client, processor.name)).length > 0).catch(() => false);
    if (held) {
      const ids = await pendingOn(client, processor.name);
      if (ids.length > 0) return ids;
    }
    processor.child.kill('SIGCONT');
    if (performance.now() > deadline) throw new Error(`${processor.name} never held an entry when stopped within ${timeoutMs} ms`);
    // Let it run a batch or two before the next try.
    await sleep(100);
  }
}

export interface Accepted {
  id: string;
  userId: number;
  locationId: number;
  starRating: number;
  /** performance.now() when the request was sent / when its 202 arrived. */
  sentAt: number;
  at: number;
}

/**
 * The k-th checkin of the user at `userIndex`: 12 locations, and the star rating moves on every 12th,
 * so no (userId, locationId, starRating) repeats for a user's first 72 (the receiver's 422 otherwise).
 */
export function tupleFor(users: readonly TestUser[], n: number): { userId: number; locationId: number; starRating: number } {
  const userIndex = n % users.length;
  const k = Math.floor(n / users.length);
  if (k >= 72) throw new Error(`checkin ${n}: more than 72 per user would repeat a (user, location, stars) tuple`);
  return { userId: users[userIndex]!.id, locationId: 1 + ((k + userIndex) % 12), starRating: (Math.floor(k / 12) + userIndex) % 6 };
}

export interface Load {
  accepted: Accepted[];
  /** Anything but a 202: "<status> <code>" (expected to stay empty). */
  refused: string[];
  sent(): number;
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
}

/**
 * Checkins through the receiver, `workers` at a time with `pauseMs` between one worker's requests
 * (a steady rate, not a flood: the run must outlast the chaos around it), until `stopWhen` says so.
 */
export function startLoad(options: {
  checkinUrl: string;
  users: readonly TestUser[];
  cookies: Map<number, string>;
  stopWhen: (load: Load) => boolean;
  workers?: number;
  pauseMs?: number;
  /** Index of the first checkin (a second load over the same users continues after the first). */
  from?: number;
}): Load {
  let next = options.from ?? 0;
  const load: Load = { accepted: [], refused: [], sent: () => next - (options.from ?? 0), done: Promise.resolve() };
  const worker = async (): Promise<void> => {
    while (!options.stopWhen(load)) {
      const n = next++;
      const body = tupleFor(options.users, n);
      const sentAt = performance.now();
      const res = await checkin(options.checkinUrl, body, options.cookies.get(body.userId));
      const reply = (await res.json()) as { id?: string; error?: { code?: string } };
      if (res.status === 202 && reply.id) load.accepted.push({ ...body, id: reply.id, sentAt, at: performance.now() });
      else load.refused.push(`${res.status} ${reply.error?.code ?? ''}`);
      await sleep(options.pauseMs ?? 30);
    }
  };
  load.done = Promise.all(Array.from({ length: options.workers ?? 4 }, worker)).then(() => undefined);
  return load;
}

/** Every key matching `pattern` (KEYS on a test-only server; on each master of a Cluster). */
async function keysOf(client: Client, pattern: string): Promise<string[]> {
  if (client instanceof Cluster) return (await Promise.all(client.nodes('master').map((node) => node.keys(pattern)))).flat().sort();
  return (await client.keys(pattern)).sort();
}

interface Statistics {
  users: Record<number, { numCheckins: string | null; lastCheckin: string | null; lastSeenAt: unknown }>;
  locations: Record<string, Record<string, unknown>>;
}

/** What the processor must have written for exactly these 202s, each counted once. */
function expectedStatistics(users: readonly TestUser[], accepted: readonly Accepted[]): Statistics {
  const expected: Statistics = { users: {}, locations: {} };
  for (const user of users) {
    const own = accepted.filter((a) => a.userId === user.id);
    if (own.length === 0) {
      expected.users[user.id] = { numCheckins: null, lastCheckin: null, lastSeenAt: null };
      continue;
    }
    const last = Math.max(...own.map((a) => entryTime(a.id)));
    // Two checkins of one user in the same millisecond: either may be the last one seen.
    const where = [...new Set(own.filter((a) => entryTime(a.id) === last).map((a) => String(a.locationId)))];
    expected.users[user.id] = {
      numCheckins: String(own.length),
      lastCheckin: String(last),
      lastSeenAt: where.length === 1 ? where[0] : expect.stringMatching(new RegExp(`^(${where.join('|')})$`)),
    };
  }
  const sums = new Map<number, { n: number; stars: number }>();
  for (const a of accepted) {
    const sum = sums.get(a.locationId) ?? { n: 0, stars: 0 };
    sum.n++;
    sum.stars += a.starRating;
    sums.set(a.locationId, sum);
  }
  for (const [locationId, { n, stars }] of sums) {
    expected.locations[`ncc:location:${locationId}`] = { numCheckins: String(n), numStars: String(stars), averageStars: String(Math.round(stars / n)) };
  }
  return expected;
}

async function actualStatistics(client: Client, users: readonly TestUser[]): Promise<Statistics> {
  const actual: Statistics = { users: {}, locations: {} };
  for (const user of users) {
    const [numCheckins, lastCheckin, lastSeenAt] = await client.hmget(`ncc:user:${user.id}`, 'numCheckins', 'lastCheckin', 'lastSeenAt');
    actual.users[user.id] = { numCheckins: numCheckins ?? null, lastCheckin: lastCheckin ?? null, lastSeenAt: lastSeenAt ?? null };
  }
  for (const key of await keysOf(client, 'ncc:location:*')) actual.locations[key] = await client.hgetall(key);
  return actual;
}

/** Total numCheckins over the hashes at `keys` as Redis has it now (a missing one counts 0). */
async function numCheckinsTotal(client: Client, keys: readonly string[]): Promise<number> {
  const values = await Promise.all(keys.map((key) => client.hget(key, 'numCheckins')));
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
}

/** Total numCheckins over every ncc:location:* as Redis has it now. */
async function locationTotal(client: Client): Promise<number> {
  return numCheckinsTotal(client, await keysOf(client, 'ncc:location:*'));
}

/** Total numCheckins over `users` as Redis has it now. */
export function appliedTotal(client: Client, users: readonly TestUser[]): Promise<number> {
  return numCheckinsTotal(
    client,
    users.map((u) => `ncc:user:${u.id}`),
  );
}

/**
 * Waits until Redis holds exactly the statistics of `accepted` (every user's numCheckins, lastCheckin
 * and lastSeenAt; every location's numCheckins, numStars and averageStars; no other location), then
 * asserts it — so a failure shows the difference, e.g. a count one too high.
 */
export async function expectExactStatistics(client: Client, users: readonly TestUser[], accepted: readonly Accepted[], timeoutMs = 20_000): Promise<void> {
  const expected = expectedStatistics(users, accepted);
  const total = accepted.length;
  // Cheap probes first (one HGET per user, then per location: a location's effect is its own script
  // and may land just after the user's), the full comparison once both totals match.
  await until(
    'every accepted checkin applied',
    timeoutMs,
    async () => (await appliedTotal(client, users)) >= total && (await locationTotal(client)) >= total,
  ).catch(() => undefined);
  expect(await actualStatistics(client, users)).toEqual(expected);
}

/** Orders stream ids `<ms>-<seq>` as Redis does. */
export function byId(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

/** XINFO STREAM ncc:checkins: its length and the id of the last entry ever added, read at one instant. */
export async function streamState(client: Client): Promise<{ length: number; lastId: string }> {
  const info = (await client.xinfo('STREAM', CHECKIN_STREAM)) as unknown[];
  return { length: Number(info[info.indexOf('length') + 1]), lastId: String(info[info.indexOf('last-generated-id') + 1]) };
}

/** The 202s for entries added after `lastId`. */
export function acceptedAfter(accepted: readonly Accepted[], lastId: string): Accepted[] {
  return accepted.filter((a) => byId(a.id, lastId) > 0);
}

/** The dead-letter stream's entries as field lists, in the order of the entries they stand for (dead-lettered concurrently, so in any order). */
export async function deadLetters(client: Client): Promise<string[][]> {
  const entries = await client.xrange(DEAD_LETTER_STREAM, '-', '+');
  return entries.map(([, fields]) => fields).sort((a, b) => byId(a[1] ?? '', b[1] ?? ''));
}

/** Sum of N over "Claimed N entries pending for over …" in a processor's output. */
export function claimedInLog(output: string): number {
  return [...output.matchAll(/Claimed (\d+) entries pending for over \d+ ms/g)].reduce((sum, [, n]) => sum + Number(n), 0);
}
