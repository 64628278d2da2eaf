/**
 * What a bench run prints (the scenario table, Redis commands per request, the targets, the
 * observability overhead table, the checkin processor's numbers) and the JSON it writes
 * (bench/results/latest.json by default).
 */
import { cpus } from 'node:os';
import { fmt } from './format.js';
import type { ObservabilityResults } from './observability.js';
import type { ProcessorResults } from './processor.js';
import type { ScenarioResults } from './scenarios.js';
import type { TargetResults } from './targets.js';
import { BCRYPT_COST } from './users.js';

export interface RunInfo {
  /** When the run started (epoch ms). */
  started: number;
  cores: number;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  options: {
    durationS: number;
    warmupS: number;
    connections: number;
    clusterWorkers: number;
    servicesFrom: string;
    smoke: boolean;
    observabilityRounds: number;
  };
}

/** Rows as an aligned Markdown table, the first column left-aligned, the others right-aligned. */
function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
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
  return markdownTable(header, rows);
}

/** The observability modes as a Markdown table (medians over the rounds; the same table docs/performance.md quotes). */
export function observabilityTable({ modes }: ObservabilityResults): string {
  const header = [
    'mode',
    'req/s',
    'the rounds',
    '× (a)',
    '× (a) min–max',
    'p99 ms',
    'CPU µs/req',
    'CPU × (a)',
    'Redis CPU µs/req',
    'OTLP requests',
    'OTLP MB',
    'spans/checkin',
    'steal %',
  ];
  const rows = modes.map((m) => [
    `(${m.mode}) ${m.name}`,
    fmt(m.rps),
    m.rpsRuns.map((r) => fmt(r)).join(' / '),
    m.ratio.toFixed(3),
    `${m.ratioMin.toFixed(3)}–${m.ratioMax.toFixed(3)}`,
    String(m.p99Ms),
    fmt(m.cpuUsPerRequest),
    m.cpuRatio.toFixed(3),
    fmt(m.redisCpuUsPerRequest, 1),
    fmt(m.sink.requests),
    fmt(m.sink.bytes / 1e6, 1),
    m.spansPerCheckin.toFixed(2),
    m.stealPercent.toFixed(1),
  ]);
  return markdownTable(header, rows);
}

/** The observability scenario's lines: what was run, the table, what the columns mean. */
export function observabilityText(o: ObservabilityResults): string {
  const otlp = Object.entries(o.tracingEnv)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const other = o.modes.reduce((n, m) => n + m.sink.other, 0);
  return [
    `Observability overhead (checkin, authenticated → 202, ${o.connections} connections): ${o.rounds} interleaved round${o.rounds > 1 ? 's' : ''} of ` +
      `${o.order.slice(0, 3).join(', ')} (${o.warmupS} s warm-up + ${o.durationS} s each), medians; × (a) paired within each round:`,
    observabilityTable(o),
    ...o.modes.map((m) => `  (${m.mode}) ${m.label}`),
    `  (c) ran with ${otlp}. OTLP columns: what the bench's sink received in the mode's windows (warm-ups included); ` +
      `spans/checkin = spans ÷ checkins answered in those windows. steal %: the machine's CPU time the hypervisor gave other guests during the runs (noisy neighbours).${other > 0 ? ` Not counted as exports: ${JSON.stringify(o.sinkOther)}.` : ''}`,
  ].join('\n');
}

/** Responses with an unexpected status, connection errors and timeouts, over all scenarios (and the processor's latency checkins, the observability runs). */
export const unexpectedResponses = (
  { results }: ScenarioResults,
  processor: ProcessorResults | null = null,
  observability: ObservabilityResults | null = null,
): number => results.reduce((n, s) => n + s.unexpected, 0) + (processor?.unexpected ?? 0) + (observability?.unexpected ?? 0);

/** By command, most first; those below 0.001 per entry (the periodic maintenance) named together at the end. */
function byCommand(counts: Record<string, number>): string {
  const sorted = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const shown = sorted.filter(([, n]) => n >= 0.0005).map(([cmd, n]) => `${cmd} ${n.toFixed(3)}`);
  const rare = sorted.filter(([, n]) => n < 0.0005).map(([cmd]) => cmd);
  return [...shown, ...(rare.length > 0 ? [`< 0.001 each: ${rare.join(', ')}`] : [])].join(', ');
}

const label = (processes: number): string => `${processes} process${processes > 1 ? 'es:' : ':  '}`;

/** The processor scenario's lines: throughput per process count, Redis work per entry, 202 → applied. */
export function processorText(p: ProcessorResults): string {
  const { latency } = p;
  return [
    `Checkin processor (report only, no targets): ${fmt(p.entriesPerRound)} entries pre-filled per drain (${p.users} users × ${fmt(p.locations)} locations), ` +
      `rounds of ${p.order.join(', ')} processes, medians:`,
    ...p.throughput.map(
      (t) =>
        `  ${label(t.processors)} ${fmt(t.perSecond)} processed checkins/s (runs ${t.perSecondRuns.map((r) => fmt(r)).join(' / ')}); ` +
        `CPU per entry: processor ${fmt(t.processorCpuUsPerEntry, 1)} µs, Redis ${fmt(t.redisCpuUsPerEntry, 1)} µs; ${t.redisCommandsPerEntry.toFixed(2)} Redis cmds/entry`,
    ),
    "Redis commands per processed entry (INFO commandstats deltas over the drain ÷ entries; the Lua-internal ones included, the bench's own polls and XADDs excluded):",
    ...p.throughput.map((t) => `  ${label(t.processors)} ${t.redisCommandsPerEntry.toFixed(2)} — ${byCommand(t.redisPerEntry)}`),
    `202 → applied (${latency.checkins} checkins through the receiver at ${latency.ratePerSecond}/s, 1 process, one location each): ` +
      `p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms; ${latency.appliedBeforeResponse} applied before the 202 arrived; ` +
      `sent → applied p50 ${latency.sentToAppliedP50Ms} ms, p99 ${latency.sentToAppliedP99Ms} ms; the 202 itself p50 ${latency.responseP50Ms} ms, p99 ${latency.responseP99Ms} ms; statuses ${JSON.stringify(latency.statuses)}`,
  ].join('\n');
}

/** The text the bench prints on stdout. */
export function textReport(
  scenarios: ScenarioResults,
  { targets }: TargetResults,
  table: string,
  processor: ProcessorResults | null = null,
  observability: ObservabilityResults | null = null,
): string {
  const { results, baselineRuns, baselineRps } = scenarios;
  const unexpected = unexpectedResponses(scenarios, processor, observability);
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
    ...(observability ? ['', observabilityText(observability)] : []),
    ...(processor ? ['', processorText(processor)] : []),
    unexpected > 0 ? `\nFAILED: ${unexpected} responses with an unexpected status, connection errors or timeouts.` : '',
  ].join('\n');
}

/** The JSON report (bench/results/latest.json); `ok` as the exit code has it. */
export function jsonReport(
  run: RunInfo,
  scenarios: ScenarioResults,
  { targets, loginCeiling }: TargetResults,
  table: string,
  processor: ProcessorResults | null = null,
  observability: ObservabilityResults | null = null,
) {
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
    /** The observability overhead scenario (every run, the per-mode medians, its table); null when it did not run. */
    observability: observability ? { ...observability, table: observabilityTable(observability) } : null,
    /** The checkin processor scenario; null when it did not run (--only without processor). */
    processor,
    ok: unexpectedResponses(scenarios, processor, observability) === 0 && (run.options.smoke || missed.length === 0),
  };
}
