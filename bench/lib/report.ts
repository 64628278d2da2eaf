/**
 * What a bench run prints (the scenario table, Redis commands per request, the targets) and the JSON
 * it writes (bench/results/latest.json by default).
 */
import { cpus } from 'node:os';
import { fmt } from './format.js';
import type { ScenarioResults } from './scenarios.js';
import type { TargetResults } from './targets.js';
import { BCRYPT_COST } from './users.js';

export interface RunInfo {
  /** When the run started (epoch ms). */
  started: number;
  cores: number;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  options: { durationS: number; warmupS: number; connections: number; clusterWorkers: number; servicesFrom: string; smoke: boolean };
}

/** The scenarios as a Markdown table, aligned (the same table docs/performance.md quotes). */
export function scenarioTable({ results }: ScenarioResults): string {
  const header = [
    'scenario',
    'expect',
    'req/s',
    'p50 ms',
    'p99 ms',
    'unexpected',
    '× baseline',
    'Redis cmds/req',
    'round trips/req',
    'CPU µs/req',
    'Redis CPU µs/req',
  ];
  const rows = results.map((s) => [
    s.name,
    String(s.expected),
    fmt(s.load.rps, s.load.rps < 100 ? 1 : 0),
    String(s.load.p50),
    String(s.load.p99),
    String(s.unexpected),
    s.ratio.toFixed(s.ratio < 0.1 ? 4 : 2),
    s.name.startsWith('healthz') ? '0' : s.redisCommandsPerRequest.toFixed(2),
    s.roundTrips === null ? '–' : s.roundTrips.toFixed(2),
    s.cpuUsPerRequest > 0 ? fmt(s.cpuUsPerRequest) : '–',
    s.redisCpuUsPerRequest > 0 ? fmt(s.redisCpuUsPerRequest, 1) : '–',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Responses with an unexpected status, connection errors and timeouts, over all scenarios. */
export const unexpectedResponses = ({ results }: ScenarioResults): number => results.reduce((n, s) => n + s.unexpected, 0);

/** The text the bench prints on stdout. */
export function textReport(scenarios: ScenarioResults, { targets }: TargetResults, table: string): string {
  const { results, baselineRuns, baselineRps } = scenarios;
  const unexpected = unexpectedResponses(scenarios);
  const spread = baselineRuns.length === 2 ? Math.abs(baselineRuns[0]! - baselineRuns[1]!) / baselineRps : 0;
  const redisLines = results
    .filter((s) => !s.name.startsWith('healthz'))
    .map((s) => {
      const parts = Object.entries(s.redisPerRequest)
        .sort((a, b) => b[1] - a[1])
        .map(([cmd, n]) => `${cmd} ${n.toFixed(3)}`);
      return `  ${s.name.padEnd(12)} ${parts.length > 0 ? parts.join(', ') : 'none'}`;
    })
    .join('\n');
  const targetLines = targets.map((t) => `  [${t.met ? 'met' : 'MISSED'}] ${t.name}: ${t.target}; measured ${t.measured}`).join('\n');
  return [
    '',
    table,
    '',
    `baseline = mean of two runs (${baselineRuns.map((r) => fmt(r)).join(' and ')} req/s, spread ${(spread * 100).toFixed(0)}%)`,
    "Redis commands per request (INFO commandstats deltas, the bench's INFO excluded; includes commands run inside the checkin Lua script):",
    redisLines,
    'Targets:',
    targetLines,
    unexpected > 0 ? `\nFAILED: ${unexpected} responses with an unexpected status, connection errors or timeouts.` : '',
  ].join('\n');
}

/** The JSON report (bench/results/latest.json); `ok` as the exit code has it. */
export function jsonReport(run: RunInfo, scenarios: ScenarioResults, { targets, loginCeiling }: TargetResults, table: string) {
  const { results, baselineRuns, baselineRps, compareMs } = scenarios;
  const missed = targets.filter((t) => !t.met);
  return {
    date: new Date(run.started).toISOString(),
    machine: {
      cores: run.cores,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverageBefore: run.loadAverageBefore,
      loadAverageAfter: run.loadAverageAfter,
    },
    options: run.options,
    baselineRps,
    baselineRuns,
    bcrypt: compareMs === null ? null : { cost: BCRYPT_COST, compareMs, cores: run.cores, loginCeilingRps: loginCeiling },
    scenarios: results.map((s) => ({
      name: s.name,
      label: s.label,
      expectedStatus: s.expected,
      rps: s.load.rps,
      requests: s.load.requests,
      durationS: s.load.durationS,
      p50Ms: s.load.p50,
      p99Ms: s.load.p99,
      maxMs: s.load.max,
      statuses: s.load.statuses,
      errors: s.load.errors,
      timeouts: s.load.timeouts,
      unexpected: s.unexpected,
      ratioToBaseline: s.ratio,
      redisCommandsPerRequest: s.redisCommandsPerRequest,
      redisPerRequestByCommand: s.redisPerRequest,
      redisRoundTripsPerRequest: s.roundTrips,
      cpuUsPerRequest: s.cpuUsPerRequest,
      redisCpuUsPerRequest: s.redisCpuUsPerRequest,
    })),
    targets,
    table,
    ok: unexpectedResponses(scenarios) === 0 && (run.options.smoke || missed.length === 0),
  };
}
