/**
 * Redis memory (and redis-server CPU) per 1 M accepted checkins, for the duplicate-check structure
 * before and after decision 022 (docs/decisions/022-checkin-limits.md), each on its own fresh redis-server:
 *   - stream only:      XADD alone (what any scheme costs for the entries themselves);
 *   - marker per checkin (before): the previous accept script, one `{ncc:checkins}:dedupe:u:l:s` key with a TTL each;
 *   - recent set per user (now): CheckinStream's script, one sorted set per user (services/checkin).
 * The per-user set is measured for two shapes of traffic: 100,000 users × 10 checkins (small sets,
 * listpack-encoded) and 1,000 users × 1,000 (sets at the default cap of 1,000, skiplist-encoded).
 *
 *   node --conditions=ncc-source --import tsx bench/checkin-memory.ts [--total 1000000]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { spawnRedis } from '@ncc/testing';
import { CheckinStream } from '@ncc/checkin';

const { values: args } = parseArgs({ options: { total: { type: 'string', default: '1000000' } } });
const TOTAL = Number(args.total);
const DAY_S = 86_400;
const BATCH = 2_000;

/** The accept script on main before the per-user set: one marker key per accepted checkin. */
const MARKER_PER_CHECKIN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'userId', ARGV[3], 'locationId', ARGV[4], 'starRating', ARGV[5], 'receivedAt', ARGV[6])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
`;

type Send = (redis: Redis, userId: number, locationId: number) => Promise<unknown>;

interface Scheme {
  name: string;
  users: number;
  send: (redis: Redis) => Send;
}

const schemes: Scheme[] = [
  {
    name: 'stream only (XADD)',
    users: 100_000,
    send: () => (r, u, l) =>
      r.xadd('ncc:checkins', 'MAXLEN', '~', String(TOTAL * 2), '*', 'userId', u, 'locationId', l, 'starRating', 4, 'receivedAt', Date.now()),
  },
  {
    name: 'before: marker key per checkin',
    users: 100_000,
    send: (redis) => {
      redis.defineCommand('oldAccept', { numberOfKeys: 2, lua: MARKER_PER_CHECKIN });
      const r = redis as Redis & { oldAccept(...a: (string | number)[]): Promise<unknown> };
      return (_, u, l) => r.oldAccept(`{ncc:checkins}:dedupe:${u}:${l}:4`, 'ncc:checkins', DAY_S, TOTAL * 2, u, l, 4, Date.now());
    },
  },
  ...[100_000, 1_000].map((users) => ({
    name: `now: recent set per user, ${users.toLocaleString('en')} users`,
    users,
    send: (redis: Redis): Send => {
      const stream = new CheckinStream(redis, {
        duplicateWindowSeconds: DAY_S,
        maxRecentPerUser: 1_000,
        ratePerUser: 1_000,
        rateWindowSeconds: 60,
        maxLen: TOTAL * 2,
      });
      return (_, userId, locationId) => stream.append({ userId, locationId, starRating: 4 }, Date.now());
    },
  })),
];

function info(text: string, field: string): number {
  return Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
}

async function measure(scheme: Scheme): Promise<{ bytes: number; cpuUs: number; keys: number }> {
  const server = await spawnRedis();
  const redis = new Redis(server.url);
  try {
    const send = scheme.send(redis);
    const before = await redis.info();
    const perUser = TOTAL / scheme.users;
    for (let i = 0; i < TOTAL; i += BATCH) {
      const batch: Promise<unknown>[] = [];
      // Interleave users as real traffic would: checkin i is user (i mod users)'s (i div users)-th.
      for (let j = i; j < Math.min(i + BATCH, TOTAL); j++) batch.push(send(redis, 1 + (j % scheme.users), 1 + Math.floor(j / scheme.users)));
      await Promise.all(batch);
    }
    if (perUser > 1_000) throw new Error('more checkins per user than the cap: not this benchmark');
    const after = await redis.info();
    const cpu = (t: string) => info(t, 'used_cpu_user') + info(t, 'used_cpu_sys');
    return {
      bytes: info(after, 'used_memory') - info(before, 'used_memory'),
      cpuUs: ((cpu(after) - cpu(before)) * 1e6) / TOTAL,
      keys: await redis.dbsize(),
    };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

const rows: { scheme: string; mb: number; bytesPerCheckin: number; cpuUs: number; keys: number }[] = [];
for (const scheme of schemes) {
  const m = await measure(scheme);
  rows.push({ scheme: scheme.name, mb: m.bytes / 1e6, bytesPerCheckin: m.bytes / TOTAL, cpuUs: m.cpuUs, keys: m.keys });
}
const streamOnly = rows[0]!.mb;
console.log(
  `${TOTAL.toLocaleString('en')} accepted checkins, used_memory delta (MB), of which duplicate check = total − stream only; redis-server CPU µs per checkin`,
);
for (const r of rows) {
  console.log(
    `${r.scheme.padEnd(44)} ${r.mb.toFixed(1).padStart(7)} MB  dedupe ${(r.mb - streamOnly).toFixed(1).padStart(6)} MB  ${r.bytesPerCheckin.toFixed(0).padStart(4)} B/checkin  ${r.cpuUs.toFixed(1).padStart(5)} µs  ${r.keys.toLocaleString('en').padStart(9)} keys`,
  );
}
