/**
 * What the services asked of Redis, from Redis' own counters:
 *  - INFO commandstats deltas → commands per request, by command (commands a Lua script calls are
 *    counted too: an accepted checkin's EVALSHA shows up with its EXISTS, XADD and SET);
 *  - INFO stats total_reads_processed deltas during a sequential probe → round trips per request
 *    (a pipeline arrives in one read; sequential requests cannot share one).
 * The bench's own INFO calls are excluded from both.
 */
import type { Redis } from 'ioredis';

export type CommandCounts = Record<string, number>;

/** INFO commandstats: calls and µs Redis spent, by command. */
export async function commandStats(client: Redis): Promise<{ calls: CommandCounts; usec: CommandCounts }> {
  const text = await client.info('commandstats');
  const calls: CommandCounts = {};
  const usec: CommandCounts = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[match[1]!] = Number(match[2]);
    usec[match[1]!] = Number(match[3]);
  }
  return { calls, usec };
}

export async function commandCounts(client: Redis): Promise<CommandCounts> {
  return (await commandStats(client)).calls;
}

/** Per-command calls between two snapshots, without the bench's own INFO. */
export function commandDelta(before: CommandCounts, after: CommandCounts): CommandCounts {
  const delta: CommandCounts = {};
  for (const [name, calls] of Object.entries(after)) {
    if (name === 'info') continue;
    const d = calls - (before[name] ?? 0);
    if (d > 0) delta[name] = d;
  }
  return delta;
}

export async function readsProcessed(client: Redis): Promise<number> {
  const text = await client.info('stats');
  const match = /^total_reads_processed:(\d+)/m.exec(text);
  if (!match) throw new Error('INFO stats has no total_reads_processed (Redis ≥ 6 needed).');
  return Number(match[1]);
}

/**
 * Send `n` requests one after another and count the socket reads Redis processed meanwhile. The
 * second INFO's own read is subtracted; nothing else talks to Redis while a probe runs.
 */
export async function roundTripsPerRequest(client: Redis, n: number, send: (i: number) => Promise<void>): Promise<number> {
  const before = await readsProcessed(client);
  for (let i = 0; i < n; i++) await send(i);
  const after = await readsProcessed(client);
  return (after - before - 1) / n;
}
