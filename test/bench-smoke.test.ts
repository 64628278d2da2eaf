/**
 * `pnpm bench` must not rot: run it for 1 s per scenario (services from source, so no build is
 * needed) and check that it completes, that every response had the expected status, and that the
 * report it writes holds every scenario with sane numbers — the observability overhead's too (one
 * round of checkin with metrics off, metrics on, metrics + tracing exporting to the bench's OTLP sink),
 * the scale curve's (checkin as 1, 2, 4 processes) and the checkin processor's (a drain of a few hundred entries with 1 and with 2 processes, 50
 * checkins for 202 → applied). Not a timed test: throughput targets are printed and marked, never
 * enforced here (--smoke).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ncc-bench-smoke-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Report {
  ok: boolean;
  options: { smoke: boolean; durationS: number; rounds: number };
  baselineRps: number;
  bcrypt: { compareMs: number; cores: number } | null;
  scenarios: {
    name: string;
    expectedStatus: number;
    rps: number;
    requests: number;
    p99Ms: number;
    statuses: Record<string, number>;
    unexpected: number;
    ratioToBaseline: number;
    redisCommandsPerRequest: number;
    redisPerRequestByCommand: Record<string, number>;
    redisRoundTripsPerRequest: number | null;
  }[];
  targets: { name: string; met: boolean }[];
  table: string;
  observability: {
    rounds: number;
    order: string[];
    runs: { mode: string; round: number; rps: number }[];
    modes: {
      mode: string;
      rps: number;
      statuses: Record<string, number>;
      unexpected: number;
      cpuUsPerRequest: number;
      ratio: number;
      sink: { requests: number; bytes: number; spans: number };
      spansPerCheckin: number;
    }[];
    table: string;
    unexpected: number;
  } | null;
  order: string[];
  scale: {
    order: string[];
    arms: { processes: number; rps: number; statuses: Record<string, number>; unexpected: number; cpuUsPerRequest: number; ratio: number }[];
    unexpected: number;
  } | null;
  processor: {
    entriesPerRound: number;
    order: number[];
    rounds: { processors: number; entries: number; perSecond: number }[];
    throughput: {
      processors: number;
      perSecond: number;
      processorCpuUsPerEntry: number;
      redisCpuUsPerEntry: number;
      redisCommandsPerEntry: number;
      redisPerEntry: Record<string, number>;
    }[];
    latency: {
      checkins: number;
      statuses: Record<string, number>;
      unexpected: number;
      p50Ms: number;
      p99Ms: number;
      sentToAppliedP50Ms: number;
      sentToAppliedP99Ms: number;
    };
    unexpected: number;
  } | null;
}

describe('pnpm bench --smoke', () => {
  it('when run for 1 s per scenario, then it exits 0, every scenario got only its expected status, and the report has the table, Redis counts, targets, the observability overhead, the scale curve and the processor numbers', async () => {
    const out = join(dir, 'smoke.json');
    const { stdout } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--conditions=ncc-source', '--import', 'tsx', 'bench/run.ts', '--duration', '1', '--smoke', '--source', '--connections', '10', '--out', out],
        { cwd: ROOT, timeout: 150_000, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' } },
        (err, so, se) => (err ? reject(new Error(`bench exited with ${String(err.code)}:\n${so}\n${se}`)) : resolve({ stdout: so, stderr: se })),
      );
    });
    expect(stdout).toContain('| scenario');
    expect(stdout).toMatch(/Targets:/);
    expect(stdout).toContain('Observability overhead');
    expect(stdout).toContain('Checkin processor');
    expect(stdout).toContain('Scale curve');
    expect(stdout).toMatch(/Floor \(the baseline \+ an accepted checkin's two Redis round trips.*checkin over the floor: -?[\d,]+ µs per request/);

    const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
    expect(report.ok).toBe(true);
    expect(report.options).toMatchObject({ smoke: true, durationS: 1, rounds: 1 });
    const names = report.scenarios.map((s) => s.name);
    expect(names).toEqual(['baseline', 'checkin', 'checkin-401', 'me', 'floor', 'healthz-idle', 'login', 'healthz-at-storm-start', 'healthz-during-login']);
    // One round: baseline, each scenario, then the baseline again (every ratio is paired with the baseline runs around it).
    expect(report.order).toEqual(['baseline', 'checkin', 'checkin-401', 'me', 'floor', 'baseline']);
    for (const s of report.scenarios) {
      expect(s.unexpected, s.name).toBe(0);
      expect(Object.keys(s.statuses), s.name).toEqual([String(s.expectedStatus)]);
      expect(s.requests, s.name).toBeGreaterThan(0);
      expect(s.rps, s.name).toBeGreaterThan(0);
    }
    const by = Object.fromEntries(report.scenarios.map((s) => [s.name, s]));
    expect(report.baselineRps).toBeGreaterThan(0);
    // Redis, as counted by Redis itself: nothing for the baseline and for a cookieless 401; an accepted
    // checkin is one session GET (EXPIRE at most once per session and interval) and one EVALSHA.
    expect(by['baseline']!.redisCommandsPerRequest).toBe(0);
    expect(by['checkin-401']!.redisCommandsPerRequest).toBe(0);
    expect(by['checkin-401']!.redisRoundTripsPerRequest).toBe(0);
    expect(by['checkin']!.redisPerRequestByCommand['evalsha']).toBeCloseTo(1, 1);
    expect(by['checkin']!.redisPerRequestByCommand['get']).toBeCloseTo(1, 1);
    expect(by['checkin']!.redisPerRequestByCommand['expire'] ?? 0).toBeLessThan(0.5);
    expect(by['checkin']!.redisRoundTripsPerRequest).toBe(2);
    // The floor is the baseline plus exactly the accepted checkin's two round trips: one GET, one EVALSHA.
    expect(by['floor']!.redisPerRequestByCommand).toEqual({ get: expect.closeTo(1, 1), evalsha: expect.closeTo(1, 1) });
    expect(by['floor']!.redisRoundTripsPerRequest).toBe(2);
    // /me reads the session and the user record; other routes may add checks, so only "some".
    expect(by['me']!.redisRoundTripsPerRequest).toBeGreaterThanOrEqual(2);
    expect(report.bcrypt?.compareMs).toBeGreaterThan(1);
    expect(report.targets.map((t) => t.name)).toEqual([
      'checkin throughput',
      'checkin CPU per request',
      'Redis round trips per accepted checkin',
      'checkin-401 throughput',
      'Redis commands per 401',
      'me throughput',
      'login throughput',
      '/healthz p99 while logins run',
      'checkin throughput with metrics on',
    ]);

    // Observability overhead: one round of (a) METRICS_PORT=off, (b) metrics on, (c) metrics + tracing
    // at 100 %. Every checkin a 202 in each; only (c) exported to the bench's OTLP sink, and its spans
    // are every request's (http server, Express handler, the Redis GET and EVALSHA: ~4 per checkin).
    const observability = report.observability;
    expect(observability).not.toBeNull();
    expect(observability!.order).toEqual(['a', 'b', 'c', 'a']);
    expect(observability!.runs.map((r) => r.mode)).toEqual(['a', 'b', 'c', 'a']);
    expect(observability!.modes.map((m) => m.mode)).toEqual(['a', 'b', 'c']);
    expect(observability!.unexpected).toBe(0);
    expect(observability!.table).toContain('(c) metrics+tracing');
    const mode = Object.fromEntries(observability!.modes.map((m) => [m.mode, m]));
    for (const m of observability!.modes) {
      expect(m.rps, m.mode).toBeGreaterThan(0);
      expect(m.cpuUsPerRequest, m.mode).toBeGreaterThan(0);
      expect(m.unexpected, m.mode).toBe(0);
      expect(Object.keys(m.statuses), m.mode).toEqual(['202']);
      expect(m.ratio, m.mode).toBeGreaterThan(0);
    }
    expect(mode['a']!.ratio).toBe(1);
    expect(mode['a']!.sink).toMatchObject({ requests: 0, spans: 0 });
    expect(mode['b']!.sink).toMatchObject({ requests: 0, spans: 0 });
    expect(mode['c']!.sink.requests).toBeGreaterThan(0);
    expect(mode['c']!.sink.bytes).toBeGreaterThan(0);
    expect(mode['c']!.spansPerCheckin).toBeGreaterThan(3);

    // The scale curve: checkin as 1, 2 and 4 node:cluster processes, interleaved, every checkin a 202.
    const scale = report.scale;
    expect(scale).not.toBeNull();
    expect(scale!.order).toEqual(['checkin×1', 'checkin×2', 'checkin×4', 'checkin×1']);
    expect(scale!.arms.map((a) => a.processes)).toEqual([1, 2, 4]);
    for (const a of scale!.arms) {
      expect(a.rps, `${a.processes} processes`).toBeGreaterThan(0);
      expect(a.cpuUsPerRequest, `${a.processes} processes`).toBeGreaterThan(0);
      expect(Object.keys(a.statuses), `${a.processes} processes`).toEqual(['202']);
      expect(a.unexpected, `${a.processes} processes`).toBe(0);
    }
    expect(scale!.arms[0]!.ratio).toBe(1);
    expect(scale!.unexpected).toBe(0);

    // The processor scenario: drains with 1 and 2 processes, each entry applied by two scripts
    // (user, location: one EVALSHA each) and acknowledged in batches; 202 → applied measured.
    const processor = report.processor;
    expect(processor).not.toBeNull();
    expect(processor!.order).toEqual([1, 2]);
    expect(processor!.entriesPerRound).toBeGreaterThan(0);
    expect(processor!.throughput.map((t) => t.processors)).toEqual([1, 2]);
    for (const t of processor!.throughput) {
      expect(t.perSecond, `${t.processors} processes`).toBeGreaterThan(0);
      // Read in 10 ms CPU ticks: a drain of a few hundred entries may cost Redis less than one.
      expect(t.processorCpuUsPerEntry, `${t.processors} processes`).toBeGreaterThanOrEqual(0);
      expect(t.redisCpuUsPerEntry, `${t.processors} processes`).toBeGreaterThanOrEqual(0);
      expect(t.redisCommandsPerEntry, `${t.processors} processes`).toBeGreaterThan(2);
      expect(t.redisPerEntry['evalsha'], `${t.processors} processes`).toBeCloseTo(2, 1);
      expect(t.redisPerEntry['xack'], `${t.processors} processes`).toBeGreaterThan(0);
      expect(t.redisPerEntry['xack'], `${t.processors} processes`).toBeLessThan(0.5);
      expect(t.redisPerEntry['xreadgroup'], `${t.processors} processes`).toBeGreaterThan(0);
    }
    expect(processor!.latency.unexpected).toBe(0);
    expect(processor!.latency.statuses).toEqual({ '202': processor!.latency.checkins });
    expect(processor!.latency.p50Ms).toBeGreaterThanOrEqual(0);
    expect(processor!.latency.p99Ms).toBeGreaterThanOrEqual(processor!.latency.p50Ms);
    expect(processor!.latency.sentToAppliedP50Ms).toBeGreaterThan(0);
    expect(processor!.unexpected).toBe(0);
  }, 180_000);
});
