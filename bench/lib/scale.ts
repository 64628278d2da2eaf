/**
 * The scale curve (`--only scale`; part of a full `pnpm bench`): the `checkin` scenario's load (logged-in
 * users, every checkin unique → 202) against checkin as 1, 2 and 4 processes (node:cluster workers
 * sharing the port, as `--cluster N` runs them), on the bench's one redis-server. Interleaved rounds
 * (bench/lib/rounds.ts) with 1 process as the reference; reported, no targets: req/s, p99, the
 * service's CPU per checkin (every worker) and redis-server's CPU per checkin — where the capacity
 * notes (checkins/s per core, per Redis shard) come from.
 */
import { fmt, log } from './format.js';
import type { Started } from './processes.js';
import { type Arm, type ArmSummary, type CheckinRoundsOptions, runRounds } from './rounds.js';
import { authenticatedCheckins, emptyStream } from './scenarios.js';

export const SCALE_PROCESSES = [1, 2, 4] as const;

export interface ScaleArm extends ArmSummary {
  processes: number;
}

export interface ScaleResults {
  rounds: number;
  order: string[];
  cores: number;
  connections: number;
  arms: ScaleArm[];
  unexpected: number;
}

export interface ScaleOptions extends CheckinRoundsOptions {
  cores: number;
  /** Starts a checkin process like the bench's own, as `workers` cluster workers. */
  startCheckin: (label: string, workers: number) => Promise<Started>;
}

const nameOf = (n: number): string => `checkin×${n}`;

export async function runScaleScenario(options: ScaleOptions): Promise<ScaleResults> {
  const { redis, sessions, durationS, warmupS, connections, rounds, cores } = options;
  log(
    `scale: checkin as ${SCALE_PROCESSES.join(', ')} processes, ${rounds} interleaved round${rounds > 1 ? 's' : ''} (${connections} connections, ${cores} cores)`,
  );
  const servers: Started[] = [];
  try {
    for (const n of SCALE_PROCESSES) servers.push(await options.startCheckin(nameOf(n), n));
    const arms: Arm[] = SCALE_PROCESSES.map((n, i) => ({
      name: nameOf(n),
      label: `checkin, authenticated → 202, ${n} process${n > 1 ? 'es' : ''}`,
      expected: 202,
      server: servers[i]!,
      request: authenticatedCheckins(sessions),
      beforeRun: emptyStream(redis),
    }));
    const result = await runRounds({ redis, reference: arms[0]!, arms: arms.slice(1), rounds, warmupS, durationS, connections, title: 'scale' });
    return {
      rounds,
      order: result.order,
      cores,
      connections,
      arms: result.arms.map((a, i) => ({ ...a, processes: SCALE_PROCESSES[i]! })),
      unexpected: result.unexpected,
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** The scale curve's lines: one row per process count, medians of the rounds. */
export function scaleText(s: ScaleResults): string {
  return [
    `Scale curve (report only, no targets): checkin as 1, 2, 4 node:cluster processes on ${s.cores} cores (shared with redis-server and the load generator), ` +
      `${s.rounds} interleaved round${s.rounds > 1 ? 's' : ''}, ${s.connections} connections, medians:`,
    ...s.arms.map(
      (a) =>
        `  ${String(a.processes).padStart(1)} process${a.processes > 1 ? 'es:' : ': '} ${fmt(a.rps)} checkins/s (× 1 process ${a.ratio.toFixed(2)}, rounds ${a.ratioMin.toFixed(2)}–${a.ratioMax.toFixed(2)}), ` +
        `p99 ${a.p99Ms} ms; CPU per checkin: service ${fmt(a.cpuUsPerRequest)} µs (all processes), Redis ${fmt(a.redisCpuUsPerRequest, 1)} µs; ${a.redisCommandsPerRequest.toFixed(2)} Redis cmds/checkin`,
    ),
  ].join('\n');
}
