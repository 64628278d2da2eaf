/**
 * What a bench run prints (the scenario table, Redis commands per request, the targets, the
 * observability overhead table, the checkin processor's numbers) and the JSON it writes
 * (bench/results/latest.json by default).
 */
import { cpus } from 'node:os';
import { fmt } from './format.js';
import type { LoadResult } from './load.js';
import type { ObservabilityResults } from './observability.js';
import type { ProcessorResults } from './processor.js';
import { type ScaleResults, scaleText } from './scale.js';
import { median, unexpectedOf } from './rounds.js';
import type { LoginResults, ScenarioResults } from './scenarios.js';
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
    rounds: number;
  };
}

/** Rows as an aligned Markdown table, the first column left-aligned, the others right-aligned. */
function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

const spread = (min: number, max: number): string => `${min.toFixed(2)}–${max.toFixed(2)}`;

/**
 * The scenarios as a Markdown table, aligned (the same table docs/performance.md quotes): the HTTP
 * scenarios' medians over the interleaved rounds with the paired ratios' min–max, then the login rounds' medians.
 */
export function scenarioTable({ http, roundTrips, login }: ScenarioResults): string {
  const header = [
    'scenario',
    'expect',
    'req/s',
    '× baseline',
    'min–max',
    'CPU µs/req',
    'CPU × baseline',
    'CPU min–max',
    'p50 ms',
    'p99 ms',
    'Redis cmds/req',
    'round trips/req',
    'Redis CPU µs/req',
    'unexpected',
  ];
  const rows = http.arms.map((a) => [
    a.name,
    String(a.expected),
    fmt(a.rps),
    a.ratio.toFixed(2),
    spread(a.ratioMin, a.ratioMax),
    fmt(a.cpuUsPerRequest),
    a.cpuRatio.toFixed(2),
    spread(a.cpuRatioMin, a.cpuRatioMax),
    String(a.p50Ms),
    String(a.p99Ms),
    a.redisCommandsPerRequest.toFixed(2),
    roundTrips[a.name]?.toFixed(2) ?? '–',
    a.redisCpuUsPerRequest > 0 ? fmt(a.redisCpuUsPerRequest, 1) : '–',
    String(a.unexpected),
  ]);
  if (login) {
    const unexpected = (f: (r: LoginResults['rounds'][number]) => LoadResult): string => String(login.rounds.reduce((n, r) => n + unexpectedOf(f(r), 200), 0));
    const dash = ['–', '–', '–', '–', '–'];
    rows.push(
      [
        'healthz-idle',
        '200',
        fmt(median(login.rounds.map((r) => r.healthIdle.rps)), 1),
        '–',
        '–',
        fmt(login.healthIdleCpuUsPerRequest),
        '–',
        '–',
        String(login.healthIdleP50Ms),
        String(login.healthIdleP99Ms),
        '0',
        '–',
        '–',
        unexpected((r) => r.healthIdle),
      ],
      [
        'login',
        '200',
        fmt(login.loginRps, 1),
        '–',
        '–',
        fmt(login.loginCpuUsPerRequest),
        '–',
        '–',
        String(login.loginP50Ms),
        String(login.loginP99Ms),
        login.redisCommandsPerRequest.toFixed(2),
        login.roundTrips.toFixed(2),
        fmt(login.loginRedisCpuUsPerRequest, 1),
        unexpected((r) => r.login),
      ],
      [
        'healthz-at-storm-start',
        '200',
        fmt(median(login.rounds.map((r) => r.healthAtStormStart.rps)), 1),
        ...dash,
        '–',
        `${login.healthAtStormStartP99Ms} (max ${login.healthAtStormStartMaxMs})`,
        '0',
        '–',
        '–',
        unexpected((r) => r.healthAtStormStart),
      ],
      [
        'healthz-during-login',
        '200',
        fmt(median(login.rounds.map((r) => r.healthDuringLogin.rps)), 1),
        ...dash,
        String(login.healthDuringP50Ms),
        String(login.healthDuringP99Ms),
        '0',
        '–',
        '–',
        unexpected((r) => r.healthDuringLogin),
      ],
    );
  }
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
      `${o.order.slice(0, 3).join(', ')} (${o.warmupS} s warm-up + ${o.durationS} s each), medians; × (a) paired with the (a) runs before and after each run:`,
    observabilityTable(o),
    ...o.modes.map((m) => `  (${m.mode}) ${m.label}`),
    `  (c) ran with ${otlp}. OTLP columns: what the bench's sink received in the mode's windows (warm-ups included); ` +
      `spans/checkin = spans ÷ checkins answered in those windows. steal %: the machine's CPU time the hypervisor gave other guests during the runs (noisy neighbours).${other > 0 ? ` Not counted as exports: ${JSON.stringify(o.sinkOther)}.` : ''}`,
  ].join('\n');
}

/** Responses with an unexpected status, connection errors and timeouts, over all scenarios (and the processor's latency checkins, the observability runs). */
export const unexpectedResponses = (
  { http, login }: ScenarioResults,
  processor: ProcessorResults | null = null,
  observability: ObservabilityResults | null = null,
  scale: ScaleResults | null = null,
): number => http.unexpected + (login?.unexpected ?? 0) + (processor?.unexpected ?? 0) + (observability?.unexpected ?? 0) + (scale?.unexpected ?? 0);

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

/** Redis commands per request by command, most first ("none" without any). */
const commandList = (counts: Record<string, number>): string => {
  const parts = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([cmd, n]) => `${cmd} ${n.toFixed(3)}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
};

/** The text the bench prints on stdout. */
export function textReport(
  scenarios: ScenarioResults,
  { targets }: TargetResults,
  table: string,
  processor: ProcessorResults | null = null,
  observability: ObservabilityResults | null = null,
  scale: ScaleResults | null = null,
): string {
  const { http, login } = scenarios;
  const unexpected = unexpectedResponses(scenarios, processor, observability, scale);
  const baseline = http.arms[0]!;
  const redisLines = [
    ...http.arms.map((a) => `  ${a.name.padEnd(12)} ${commandList(a.redisPerRequest)}`),
    ...(login ? [`  ${'login'.padEnd(12)} ${commandList(login.redisPerRequest)}`] : []),
  ].join('\n');
  const targetLines = targets.map((t) => `  [${t.met ? 'met' : 'MISSED'}] ${t.name}: ${t.target}; measured ${t.measured}`).join('\n');
  const floor = http.arms.find((a) => a.name === 'floor');
  const checkin = http.arms.find((a) => a.name === 'checkin');
  const floorLines = floor
    ? [
        `Floor (the baseline + an accepted checkin's two Redis round trips through ioredis, nothing else): ${floor.ratio.toFixed(2)}× baseline throughput, ` +
          `${floor.cpuRatio.toFixed(2)}× its CPU (${fmt(floor.cpuUsPerRequest)} vs ${fmt(baseline.cpuUsPerRequest)} µs)` +
          (checkin ? `; checkin over the floor: ${fmt(checkin.cpuUsPerRequest - floor.cpuUsPerRequest)} µs per request` : ''),
      ]
    : [];
  return [
    '',
    `HTTP scenarios: ${http.rounds} interleaved round${http.rounds > 1 ? 's' : ''} (${http.order.join(', ')}); medians; × baseline paired with the baseline runs before and after each run, min–max over the rounds.`,
    table,
    '',
    `baseline runs: ${baseline.rpsRuns.map((r) => fmt(r)).join(' / ')} req/s; steal (CPU time the hypervisor gave other guests) median ${baseline.stealPercent.toFixed(1)} %` +
      (login
        ? `; login rounds: ${login.rounds.map((r) => fmt(r.login.rps, 1)).join(' / ')} req/s, /healthz p99 ${login.rounds.map((r) => r.healthDuringLogin.p99).join(' / ')} ms`
        : ''),
    "Redis commands per request (INFO commandstats deltas, the bench's INFO excluded; includes commands run inside the checkin Lua script):",
    redisLines,
    'Targets:',
    targetLines,
    ...floorLines,
    ...(observability ? ['', observabilityText(observability)] : []),
    ...(scale ? ['', scaleText(scale)] : []),
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
  scale: ScaleResults | null = null,
) {
  const { http, roundTrips, login } = scenarios;
  const missed = targets.filter((t) => !t.met);
  const loginRow = (name: string, label: string, rps: number, p50Ms: number, p99Ms: number, runs: LoadResult[], extra: object) => ({
    name,
    label,
    expectedStatus: 200,
    rps,
    requests: runs.reduce((n, r) => n + r.requests, 0),
    p50Ms,
    p99Ms,
    statuses: runs.reduce<Record<string, number>>((all, r) => {
      for (const [code, n] of Object.entries(r.statuses)) all[code] = (all[code] ?? 0) + n;
      return all;
    }, {}),
    unexpected: runs.reduce((n, r) => n + unexpectedOf(r, 200), 0),
    ...extra,
  });
  /** A /healthz probe's row: medians over the login rounds, and its per-round p99 and max. */
  const probeRow = (name: string, label: string, pick: (r: LoginResults['rounds'][number]) => LoadResult) => {
    const runs = login!.rounds.map(pick);
    const med = (f: (r: LoadResult) => number): number => median(runs.map(f));
    return loginRow(
      name,
      label,
      med((r) => r.rps),
      med((r) => r.p50),
      med((r) => r.p99),
      runs,
      { p99MsRuns: runs.map((r) => r.p99), maxMs: med((r) => r.max) },
    );
  };
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
    baselineRps: http.arms[0]!.rps,
    order: http.order,
    bcrypt: login === null ? null : { cost: BCRYPT_COST, compareMs: login.compareMs, cores: run.cores, loginCeilingRps: loginCeiling },
    /** Medians over the rounds; every measured run is in `runs`. */
    scenarios: [
      ...http.arms.map((a) => ({
        name: a.name,
        label: a.label,
        expectedStatus: a.expected,
        rps: a.rps,
        rpsRuns: a.rpsRuns,
        requests: http.runs.filter((r) => r.arm === a.name).reduce((n, r) => n + r.load.requests, 0),
        p50Ms: a.p50Ms,
        p99Ms: a.p99Ms,
        statuses: a.statuses,
        unexpected: a.unexpected,
        ratioToBaseline: a.ratio,
        ratioMin: a.ratioMin,
        ratioMax: a.ratioMax,
        cpuUsPerRequest: a.cpuUsPerRequest,
        cpuRatioToBaseline: a.cpuRatio,
        cpuRatioMin: a.cpuRatioMin,
        cpuRatioMax: a.cpuRatioMax,
        redisCommandsPerRequest: a.redisCommandsPerRequest,
        redisPerRequestByCommand: a.redisPerRequest,
        redisRoundTripsPerRequest: roundTrips[a.name] ?? null,
        redisCpuUsPerRequest: a.redisCpuUsPerRequest,
        stealPercent: a.stealPercent,
      })),
      ...(login
        ? [
            { ...probeRow('healthz-idle', '/healthz, no other load (reference)', (r) => r.healthIdle), cpuUsPerRequest: login.healthIdleCpuUsPerRequest },
            loginRow(
              'login',
              `POST /login (bcrypt cost ${BCRYPT_COST})`,
              login.loginRps,
              login.loginP50Ms,
              login.loginP99Ms,
              login.rounds.map((r) => r.login),
              {
                rpsRuns: login.rounds.map((r) => r.login.rps),
                cpuUsPerRequest: login.loginCpuUsPerRequest,
                redisCpuUsPerRequest: login.loginRedisCpuUsPerRequest,
                redisCommandsPerRequest: login.redisCommandsPerRequest,
                redisPerRequestByCommand: login.redisPerRequest,
                redisRoundTripsPerRequest: login.roundTrips,
              },
            ),
            probeRow(
              'healthz-at-storm-start',
              "/healthz during the login storm's first second (every login connection opening at once)",
              (r) => r.healthAtStormStart,
            ),
            probeRow('healthz-during-login', '/healthz while logins run', (r) => r.healthDuringLogin),
          ]
        : []),
    ],
    runs: http.runs.map((r) => ({
      scenario: r.arm,
      round: r.round,
      rps: r.load.rps,
      p99Ms: r.load.p99,
      cpuUsPerRequest: r.cpuUsPerRequest,
      redisCpuUsPerRequest: r.redisCpuUsPerRequest,
      stealPercent: r.stealPercent,
    })),
    targets,
    table,
    /** The observability overhead scenario (every run, the per-mode medians, its table); null when it did not run. */
    observability: observability ? { ...observability, table: observabilityTable(observability) } : null,
    /** The scale curve (checkin as 1, 2, 4 processes); null when it did not run. */
    scale,
    /** The checkin processor scenario; null when it did not run (--only without processor). */
    processor,
    ok: unexpectedResponses(scenarios, processor, observability, scale) === 0 && (run.options.smoke || missed.length === 0),
  };
}
