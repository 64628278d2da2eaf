import type { Result } from 'ioredis';
import { CHECKIN_STREAM, PROCESSOR_GROUP } from '@ncc/checkins';
import type { RedisClient } from '@ncc/service-kit';

/** An entry as delivered: its id, its fields as stored, and how often the group has delivered it so far. */
export interface DeliveredEntry {
  id: string;
  fields: string[];
  deliveries: number;
}

export interface Maintenance {
  /** Our group's oldest unacknowledged entry id (or the id after the last delivered one); every entry below it is acknowledged. */
  bound: string;
  /** The group whose bound the trim stopped at (ours, or another group's that lags behind). */
  trimmedUpTo: { group: string; bound: string };
  trimmed: number;
  length: number;
  /** Entries not yet delivered to our group (Redis's own `lag`; null when Redis cannot tell). */
  lag: number | null;
  pending: number;
}

/**
 * One atomic step on the stream's node, every PROCESSOR_TRIM_INTERVAL_MS: for each consumer group the
 * bound below which it has acknowledged everything — its oldest pending entry, or with nothing
 * pending the id right after its last delivered one — then XTRIM MINID at the lowest bound of all
 * groups. So no entry any group has not acknowledged is ever trimmed (Redis 7.0 has no XADD … ACKED).
 * In one script because two separate reads (last-delivered-id, then XPENDING) could let an entry
 * delivered in between slip below the bound.
 */
const MAINTAIN = `
local stream, ours = KEYS[1], ARGV[1]
if redis.call('EXISTS', stream) == 0 then return false end
local function field(list, name)
  for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
end
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local minBound, minGroup, ourBound, lag, pendingCount = nil, nil, nil, -1, 0
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name = field(g, 'name')
  local pending = redis.call('XPENDING', stream, name)
  local bound
  if tonumber(pending[1]) > 0 then
    bound = pending[2]
  else
    local ms, seq = string.match(field(g, 'last-delivered-id'), '^(%d+)-(%d+)$')
    bound = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
  end
  if minBound == nil or less(bound, minBound) then minBound, minGroup = bound, name end
  if name == ours then
    ourBound, pendingCount = bound, tonumber(pending[1])
    local l = field(g, 'lag')
    if l then lag = tonumber(l) end
  end
end
local trimmed = 0
if minBound then trimmed = redis.call('XTRIM', stream, 'MINID', minBound) end
return {ourBound or '0-0', minGroup or '', minBound or '0-0', trimmed, redis.call('XLEN', stream), lag, pendingCount}
`;

/**
 * Removes consumers that have left: idle longer than ARGV[2] ms with nothing pending (XGROUP
 * DELCONSUMER would drop a consumer's pending entries, so one with any is kept until they are claimed).
 * Atomic with the check, so a consumer that comes back and reads in between is never deleted.
 */
const REMOVE_IDLE_CONSUMERS = `
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name ~= ARGV[3] and tonumber(pending) == 0 and tonumber(idle) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    nccMaintainGroup(stream: string, group: string): Result<[string, string, string, number, number, number, number] | null, Context>;
    nccRemoveIdleConsumers(stream: string, group: string, idleMs: number, self: string): Result<string[], Context>;
  }
}

type RawEntry = [id: string, fields: string[] | null] | null;
type ReadReply = [stream: string, entries: RawEntry[]][] | null;

/** The consumer group on the checkin stream: reads, claims, acknowledgements, trimming. */
export class CheckinGroup {
  constructor(
    /** For every command that does not block. */
    private readonly redis: RedisClient,
    /** A connection of its own for the blocking XREADGROUP, so it never holds up the others' commands. */
    private readonly reader: RedisClient,
    readonly consumer: string,
  ) {
    if (typeof redis.nccMaintainGroup !== 'function') {
      redis.defineCommand('nccMaintainGroup', { numberOfKeys: 1, lua: MAINTAIN });
      redis.defineCommand('nccRemoveIdleConsumers', { numberOfKeys: 1, lua: REMOVE_IDLE_CONSUMERS });
    }
  }

  /** Creates the group (and the stream) unless it exists; from the first entry, so the backlog is processed too. */
  async ensureGroup(): Promise<boolean> {
    try {
      await this.redis.xgroup('CREATE', CHECKIN_STREAM, PROCESSOR_GROUP, '0', 'MKSTREAM');
      return true;
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return false;
      throw err;
    }
  }

  /** New entries for this consumer, waiting up to `blockMs` (">": never delivered to anyone before). */
  async readNew(count: number, blockMs: number): Promise<DeliveredEntry[]> {
    const reply = (await this.reader.xreadgroup(
      'GROUP',
      PROCESSOR_GROUP,
      this.consumer,
      'COUNT',
      count,
      'BLOCK',
      blockMs,
      'STREAMS',
      CHECKIN_STREAM,
      '>',
    )) as ReadReply;
    return entriesOf(reply, () => 1);
  }

  /** This consumer's own pending entries (after a Redis error cut a batch short); re-reading counts as a delivery. */
  async readOwnPending(count: number): Promise<DeliveredEntry[]> {
    const reply = (await this.redis.xreadgroup('GROUP', PROCESSOR_GROUP, this.consumer, 'COUNT', count, 'STREAMS', CHECKIN_STREAM, '0')) as ReadReply;
    const gone: string[] = [];
    const entries = entriesOf(reply, () => 0, gone);
    // Pending but deleted from the stream (XDEL, or a trim by someone else): nothing left to apply.
    await this.ack(gone);
    return this.withDeliveries(entries);
  }

  /** Takes over entries idle longer than `minIdleMs` on any consumer (XAUTOCLAIM), with their delivery counts. */
  async claimIdle(minIdleMs: number, count: number): Promise<DeliveredEntry[]> {
    const [, raw] = (await this.redis.xautoclaim(CHECKIN_STREAM, PROCESSOR_GROUP, this.consumer, minIdleMs, '0-0', 'COUNT', count)) as [
      string,
      RawEntry[],
      string[]?,
    ];
    const entries = entriesOf([[CHECKIN_STREAM, raw]], () => 0);
    return this.withDeliveries(entries);
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.xack(CHECKIN_STREAM, PROCESSOR_GROUP, ...ids);
  }

  async maintain(): Promise<Maintenance | null> {
    const reply = await this.redis.nccMaintainGroup(CHECKIN_STREAM, PROCESSOR_GROUP);
    if (!reply) return null;
    const [bound, group, groupBound, trimmed, length, lag, pending] = reply;
    return { bound, trimmedUpTo: { group, bound: groupBound }, trimmed, length, lag: lag < 0 ? null : lag, pending };
  }

  removeIdleConsumers(idleMs: number): Promise<string[]> {
    return this.redis.nccRemoveIdleConsumers(CHECKIN_STREAM, PROCESSOR_GROUP, idleMs, this.consumer);
  }

  /** The delivery counts of entries now pending on this consumer (XPENDING over their id range). */
  private async withDeliveries(entries: DeliveredEntry[]): Promise<DeliveredEntry[]> {
    if (entries.length === 0) return entries;
    const first = entries[0]!.id;
    const last = entries[entries.length - 1]!.id;
    const pending = (await this.redis.xpending(CHECKIN_STREAM, PROCESSOR_GROUP, first, last, entries.length, this.consumer)) as [
      string,
      string,
      number,
      number,
    ][];
    const counts = new Map(pending.map(([id, , , deliveries]) => [id, deliveries]));
    return entries.map((e) => ({ ...e, deliveries: counts.get(e.id) ?? 1 }));
  }
}

/** Orders stream ids `<ms>-<seq>` as Redis does. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

/** A pending entry deleted from the stream comes back without fields; its id goes to `gone`. */
function entriesOf(reply: ReadReply, deliveries: () => number, gone: string[] = []): DeliveredEntry[] {
  const out: DeliveredEntry[] = [];
  for (const [, entries] of reply ?? []) {
    for (const entry of entries) {
      if (!entry) continue;
      if (entry[1]) out.push({ id: entry[0], fields: entry[1], deliveries: deliveries() });
      else gone.push(entry[0]);
    }
  }
  return out;
}
