/**
 * `pnpm bench` must not rot: run it for 1 s per scenario (services from source, so no build is
 * needed) and check that it completes, that every response had the expected status, and that the
 * report it writes holds every scenario with sane numbers. Not a timed test: throughput targets are
 * printed and marked, never enforced here (--smoke).
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
  options: { smoke: boolean; durationS: number };
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
}

describe('pnpm bench --smoke', () => {
  it('when run for 1 s per scenario, then it exits 0, every scenario got only its expected status, and the report has the table, Redis counts and targets', async () => {
    const out = join(dir, 'smoke.json');
    const { stdout } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--conditions=ncc-source', '--import', 'tsx', 'bench/run.ts', '--duration', '1', '--smoke', '--source', '--connections', '10', '--out', out],
        { cwd: ROOT, timeout: 90_000, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' } },
        (err, so, se) => (err ? reject(new Error(`bench exited with ${String(err.code)}:\n${so}\n${se}`)) : resolve({ stdout: so, stderr: se })),
      );
    });
    expect(stdout).toContain('| scenario');
    expect(stdout).toMatch(/Targets:/);

    const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
    expect(report.ok).toBe(true);
    expect(report.options).toMatchObject({ smoke: true, durationS: 1 });
    const names = report.scenarios.map((s) => s.name);
    expect(names).toEqual(['baseline', 'checkin', 'checkin-401', 'me', 'baseline-2', 'healthz-idle', 'login', 'healthz-during-login']);
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
    // /me reads the session and the user record; other routes may add checks, so only "some".
    expect(by['me']!.redisRoundTripsPerRequest).toBeGreaterThanOrEqual(2);
    expect(report.bcrypt?.compareMs).toBeGreaterThan(1);
    expect(report.targets.map((t) => t.name)).toEqual([
      'checkin throughput',
      'Redis round trips per accepted checkin',
      '401 throughput',
      'Redis commands per 401',
      'login throughput',
      '/healthz p99 while logins run',
    ]);
  }, 120_000);
});
