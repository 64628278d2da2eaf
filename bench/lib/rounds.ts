/**
 * Interleaved rounds: the way every comparison in the bench is measured on a shared, noisy machine.
 * The reference arm runs first in each round and once more after the last, the other arms between:
 *
 *   ref, A, B, …, ref, A, B, …, ref, A, B, …, ref
 *
 * so every run of an arm has a reference run a few seconds before it and one after it. An arm's ratio
 * in a round is its req/s ÷ the mean of those two reference runs (and the same for CPU µs per
 * request); the arm's figures are the medians over the rounds, with the min–max of the ratios as
 * their spread. Neighbours' noise that lasts longer than a run is shared by the pair and cancels; a
 * burst during one run moves one round, which the median ignores.
 *
 * Each run: a warm-up (the arm's first run gets `warmupS`, later runs at most 1 s: the process is
 * warm by then), then the measured load with the serving process's CPU (/proc), redis-server's CPU,
 * Redis' command counters and the machine's steal time read around it.
 */
import { readFileSync } from 'node:fs';
import type { SpawnedRedis } from '@ncc/testing';
import { fmt, log } from './format.js';
import { load, type LoadOptions, type LoadResult } from './load.js';
import { processCpuSeconds, type Started } from './processes.js';
import { commandCounts, commandDelta, type CommandCounts } from './redis-stats.js';
import type { Session } from './users.js';

export interface Arm {
  name: string;
  label: string;
  /** The one status every response must have. */
  expected: number;
  server: Started;
  request: LoadOptions['request'];
  /** Runs before each of this arm's runs, warm-up included (empty the stream, note a counter). */
  beforeRun?: () => Promise<void>;
  /** Runs after each of this arm's runs, once the requests in flight have landed. */
  afterRun?: (run: RoundRun) => Promise<void>;
}

/** One measured run of one arm. */
export interface RoundRun {
  arm: string;
  round: number;
  load: LoadResult;
  /** Responses with another status than the arm's, connection errors and timeouts. */
  unexpected: number;
  /** Requests answered in the warm-up (not measured; some scenarios count what the warm-up did too). */
  warmupRequests: number;
  /** CPU (user + system, every thread and cluster worker) of the serving process during the measured run, per response. */
  cpuUsPerRequest: number;
  redisCpuUsPerRequest: number;
  /** INFO commandstats calls during the measured run (commands run inside Lua scripts included). */
  redisCommands: CommandCounts;
  redisCommandsPerRequest: number;
  /** Share of the machine's CPU time the hypervisor gave to other guests during the run, in % (how noisy the neighbours were). */
  stealPercent: number;
}

export interface ArmSummary {
  name: string;
  label: string;
  expected: number;
  pid: number | undefined;
  rounds: number;
  /** Medians over the rounds. */
  rps: number;
  rpsRuns: number[];
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  redisCpuUsPerRequest: number;
  redisCommandsPerRequest: number;
  /** Every measured run's commands ÷ every measured run's requests, by command. */
  redisPerRequest: CommandCounts;
  stealPercent: number;
  /** req/s ÷ the mean of the reference runs before and after, per round: median and min–max (1 for the reference). */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** CPU µs per request ÷ the reference's, paired the same way: median and min–max. */
  cpuRatio: number;
  cpuRatioMin: number;
  cpuRatioMax: number;
  /** Over every run. */
  statuses: Record<string, number>;
  unexpected: number;
}

export interface RoundsResult {
  rounds: number;
  /** Arm names in the order they ran. */
  order: string[];
  runs: RoundRun[];
  /** The reference first, then the arms in their order. */
  arms: ArmSummary[];
  unexpected: number;
}

/** What every scenario that loads a checkin process in rounds takes from the bench run. */
export interface CheckinRoundsOptions {
  redis: SpawnedRedis;
  /** Logged-in users, one per connection. */
  sessions: Session[];
  durationS: number;
  warmupS: number;
  connections: number;
  rounds: number;
}

export interface RoundsOptions {
  redis: SpawnedRedis;
  /** The arm every other is compared with. */
  reference: Arm;
  arms: Arm[];
  rounds: number;
  warmupS: number;
  durationS: number;
  connections: number;
  /** Prefix of the progress lines. */
  title: string;
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function unexpectedOf(result: LoadResult, expected: number): number {
  let n = result.errors + result.timeouts;
  for (const [code, count] of Object.entries(result.statuses)) if (Number(code) !== expected) n += count;
  return n;
}

// autocannon stops with up to `connections` requests in flight; the server still completes them.
// Wait for that before counting anything else, or they land in the next run's numbers.
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

/** The machine's CPU ticks so far (all CPUs, from /proc/stat): in total, and stolen by the hypervisor for other guests. */
export function machineTicks(): { total: number; steal: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
  } catch {
    return { total: 0, steal: 0 };
  }
}

/** CPU seconds redis-server has used so far (0 when its pid is unknown). */
export const redisCpuSeconds = (redis: SpawnedRedis): number => (redis.pid === undefined ? 0 : processCpuSeconds(redis.pid));

const total = (counts: CommandCounts): number => Object.values(counts).reduce((a, b) => a + b, 0);

/** One run: warm-up, then the measured load with every counter read around it. */
async function measureRun(options: RoundsOptions, arm: Arm, round: number, warmupS: number): Promise<RoundRun> {
  const { redis, connections, durationS } = options;
  const base = { url: arm.server.url, connections, request: arm.request };
  const redisCpu = (): number => redisCpuSeconds(redis);
  await arm.beforeRun?.();
  let warmupRequests = 0;
  if (warmupS > 0) {
    warmupRequests = (await load({ ...base, durationS: warmupS })).requests;
    await settle();
  }
  const before = await commandCounts(redis.client);
  const cpu0 = arm.server.cpuSeconds();
  const redisCpu0 = redisCpu();
  const ticks0 = machineTicks();
  const result = await load({ ...base, durationS });
  const cpu = arm.server.cpuSeconds() - cpu0;
  const redisCpuUsed = redisCpu() - redisCpu0;
  const ticks = machineTicks();
  const redisCommands = commandDelta(before, await commandCounts(redis.client));
  await settle();
  const requests = Math.max(1, result.requests);
  const run: RoundRun = {
    arm: arm.name,
    round,
    load: result,
    unexpected: unexpectedOf(result, arm.expected),
    warmupRequests,
    cpuUsPerRequest: (cpu * 1e6) / requests,
    redisCpuUsPerRequest: (redisCpuUsed * 1e6) / requests,
    redisCommands,
    redisCommandsPerRequest: total(redisCommands) / requests,
    stealPercent: ticks.total > ticks0.total ? (100 * (ticks.steal - ticks0.steal)) / (ticks.total - ticks0.total) : 0,
  };
  await arm.afterRun?.(run);
  log(
    `  ${options.title} r${round} ${arm.name}: ${fmt(result.rps)} req/s, p99 ${result.p99} ms, ${fmt(run.cpuUsPerRequest)} µs CPU/req, ` +
      `${run.stealPercent.toFixed(1)} % steal, statuses ${JSON.stringify(result.statuses)}${result.errors ? `, ${result.errors} errors` : ''}`,
  );
  return run;
}

function summarise(runs: RoundRun[], arm: Arm, referenceName: string): ArmSummary {
  const mine = runs.filter((r) => r.arm === arm.name);
  const refs = runs.filter((r) => r.arm === referenceName);
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (const r of arm.name === referenceName ? [] : mine) {
    // The reference runs just before and just after this one (rounds r and r + 1).
    const pair = refs.filter((x) => x.round === r.round || x.round === r.round + 1);
    if (pair.length === 0) continue;
    const refRps = pair.reduce((n, x) => n + x.load.rps, 0) / pair.length;
    const refCpu = pair.reduce((n, x) => n + x.cpuUsPerRequest, 0) / pair.length;
    ratios.push(refRps > 0 ? r.load.rps / refRps : 0);
    cpuRatios.push(refCpu > 0 ? r.cpuUsPerRequest / refCpu : 0);
  }
  if (arm.name === referenceName) {
    ratios.push(1);
    cpuRatios.push(1);
  }
  const statuses: Record<string, number> = {};
  for (const r of mine) for (const [code, n] of Object.entries(r.load.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
  const requests = mine.reduce((n, r) => n + r.load.requests, 0);
  const commands: CommandCounts = {};
  for (const r of mine) for (const [cmd, n] of Object.entries(r.redisCommands)) commands[cmd] = (commands[cmd] ?? 0) + n;
  const redisPerRequest = Object.fromEntries(Object.entries(commands).map(([cmd, n]) => [cmd, requests > 0 ? n / requests : 0]));
  return {
    name: arm.name,
    label: arm.label,
    expected: arm.expected,
    pid: arm.server.pid,
    rounds: mine.length,
    rps: median(mine.map((r) => r.load.rps)),
    rpsRuns: mine.map((r) => r.load.rps),
    p50Ms: median(mine.map((r) => r.load.p50)),
    p99Ms: median(mine.map((r) => r.load.p99)),
    cpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)),
    redisCpuUsPerRequest: median(mine.map((r) => r.redisCpuUsPerRequest)),
    redisCommandsPerRequest: median(mine.map((r) => r.redisCommandsPerRequest)),
    redisPerRequest,
    stealPercent: median(mine.map((r) => r.stealPercent)),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    cpuRatio: median(cpuRatios),
    cpuRatioMin: Math.min(...cpuRatios),
    cpuRatioMax: Math.max(...cpuRatios),
    statuses,
    unexpected: mine.reduce((n, r) => n + r.unexpected, 0),
  };
}

/** The arms (and the reference around them) in interleaved rounds; see the top of this file. */
export async function runRounds(options: RoundsOptions): Promise<RoundsResult> {
  const { reference, arms, rounds, warmupS } = options;
  const schedule: { arm: Arm; round: number }[] = [];
  for (let round = 1; round <= rounds; round++) for (const arm of [reference, ...arms]) schedule.push({ arm, round });
  schedule.push({ arm: reference, round: rounds + 1 });
  const warmed = new Set<string>();
  const runs: RoundRun[] = [];
  for (const { arm, round } of schedule) {
    runs.push(await measureRun(options, arm, round, warmed.has(arm.name) ? Math.min(1, warmupS) : warmupS));
    warmed.add(arm.name);
  }
  const summaries = [reference, ...arms].map((arm) => summarise(runs, arm, reference.name));
  return {
    rounds,
    order: schedule.map((s) => s.arm.name),
    runs,
    arms: summaries,
    unexpected: runs.reduce((n, r) => n + r.unexpected, 0),
  };
}
