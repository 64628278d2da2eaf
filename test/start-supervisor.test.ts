/**
 * The restart policy of `pnpm start` (scripts/start/supervisor.ts): the pure crash bookkeeping with
 * given times, and the supervisor with real child processes that crash at once (`node -e`), with
 * small delays so that a whole crash loop takes well under a second.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@ncc/service-kit';
import { sleep, until } from '@ncc/testing';
import { launch, type Managed } from '../scripts/start/children.js';
import {
  CrashTracker,
  DEFAULT_RESTART_POLICY,
  describeExit,
  type RestartPolicy,
  restartPolicyFromEnv,
  seconds,
  Supervisor,
} from '../scripts/start/supervisor.js';
import { ROOT } from './support/services.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the crash bookkeeping (CrashTracker)', () => {
  it('when a service crashes again and again, then the delay doubles from 0.5 s and the 6th crash within 60 s gives up', () => {
    const tracker = new CrashTracker(DEFAULT_RESTART_POLICY);
    const decisions = [0, 1_000, 3_000, 6_000, 12_000, 25_000].map((at) => tracker.crashed(at, 100));
    expect(decisions).toEqual([
      { restart: true, attempt: 1, delayMs: 500 },
      { restart: true, attempt: 2, delayMs: 1000 },
      { restart: true, attempt: 3, delayMs: 2000 },
      { restart: true, attempt: 4, delayMs: 4000 },
      { restart: true, attempt: 5, delayMs: 8000 },
      { restart: false, crashes: 6 },
    ]);
  });

  it('when the delay would grow past the cap, then it stays at maxDelayMs', () => {
    const tracker = new CrashTracker({ ...DEFAULT_RESTART_POLICY, maxRestarts: 10, maxDelayMs: 3000 });
    const delays = [1, 2, 3, 4, 5, 6].map((i) => tracker.crashed(i, 10)).map((d) => (d.restart ? d.delayMs : -1));
    expect(delays).toEqual([500, 1000, 2000, 3000, 3000, 3000]);
  });

  it('when earlier crashes are more than 60 s old, then they are forgotten', () => {
    const tracker = new CrashTracker(DEFAULT_RESTART_POLICY);
    for (const at of [0, 1000, 2000, 3000, 4000]) tracker.crashed(at, 100);
    // 60.5 s after the first: that one is out of the window, four remain, this is the fifth.
    expect(tracker.crashed(60_500, 100)).toEqual({ restart: true, attempt: 5, delayMs: 8000 });
    // Long after all of them: a fresh start.
    expect(tracker.crashed(200_000, 100)).toEqual({ restart: true, attempt: 1, delayMs: 500 });
  });

  it('when the process stayed up for stableAfterMs (30 s), then its earlier crashes are forgotten', () => {
    const tracker = new CrashTracker(DEFAULT_RESTART_POLICY);
    for (const at of [0, 1000, 2000, 3000]) tracker.crashed(at, 100);
    expect(tracker.crashed(40_000, 30_000)).toEqual({ restart: true, attempt: 1, delayMs: 500 });
    expect(tracker.crashed(41_000, 100)).toEqual({ restart: true, attempt: 2, delayMs: 1000 });
  });

  it('when restarts are off (maxRestarts 0), then the first crash gives up', () => {
    expect(new CrashTracker({ ...DEFAULT_RESTART_POLICY, maxRestarts: 0 }).crashed(0, 100)).toEqual({ restart: false, crashes: 1 });
  });

  it('when exits and delays are described, then they read as in the log lines', () => {
    expect(describeExit(1)).toBe('exited with code 1');
    expect(describeExit('SIGKILL')).toBe('was killed by SIGKILL');
    expect(describeExit('ENOENT')).toBe('could not be started (ENOENT)');
    expect([500, 1000, 2000, 50, 1250].map(seconds)).toEqual(['0.5 s', '1 s', '2 s', '0.05 s', '1.25 s']);
  });
});

describe('the restart knobs of pnpm start (environment)', () => {
  it('when nothing is set, then the defaults apply: 0.5 s doubling to 8 s, 5 restarts within 60 s, stable after 30 s', () => {
    expect(restartPolicyFromEnv({})).toEqual({ initialDelayMs: 500, maxDelayMs: 8000, maxRestarts: 5, windowMs: 60_000, stableAfterMs: 30_000 });
  });

  it('when NCC_RESTART_DELAY_MS and NCC_RESTART_LIMIT are set, then they are used', () => {
    expect(restartPolicyFromEnv({ NCC_RESTART_DELAY_MS: '50', NCC_RESTART_LIMIT: '0' })).toMatchObject({ initialDelayMs: 50, maxRestarts: 0 });
  });

  it('when a knob is not a number, then a ConfigError names it', () => {
    expect(() => restartPolicyFromEnv({ NCC_RESTART_LIMIT: 'many' })).toThrow(ConfigError);
    expect(() => restartPolicyFromEnv({ NCC_RESTART_LIMIT: 'many' })).toThrow(/NCC_RESTART_LIMIT/);
  });
});

interface Harness {
  supervisor: Supervisor;
  launched: { pid: number | undefined; at: number }[];
  reports: { line: string; at: number }[];
  gaveUp: Promise<string>;
}

/** A supervisor over `node -e <script>` processes, recording every launch and report with its time. */
function supervise(script: string, policy: Partial<RestartPolicy>, options: { supervise?: boolean; mayRestart?: () => boolean } = {}): Harness {
  const launched: Harness['launched'] = [];
  const reports: Harness['reports'] = [];
  let giveUp: (message: string) => void = () => undefined;
  const gaveUp = new Promise<string>((resolve) => (giveUp = resolve));
  const supervisor = new Supervisor({
    name: 'crasher',
    launch: (): Managed => {
      const managed = launch('crasher', process.execPath, ['-e', script], { cwd: ROOT, env: { PATH: process.env['PATH'] } });
      launched.push({ pid: managed.pid, at: performance.now() });
      return managed;
    },
    policy: { ...DEFAULT_RESTART_POLICY, ...policy },
    report: (line) => reports.push({ line, at: performance.now() }),
    onGiveUp: giveUp,
    ...(options.mayRestart ? { mayRestart: options.mayRestart } : {}),
  });
  if (options.supervise !== false) supervisor.supervise();
  return { supervisor, launched, reports, gaveUp };
}

describe('the supervisor, with real processes that crash at once', () => {
  it('when a process keeps exiting with code 3, then it is restarted after 50, 100, 150 (capped) ms, and the 4th crash gives up', async () => {
    const { supervisor, launched, reports, gaveUp } = supervise('process.exit(3)', { initialDelayMs: 50, maxDelayMs: 150, maxRestarts: 3 });
    const message = await gaveUp;
    expect(reports.map((r) => r.line)).toEqual([
      'crasher exited with code 3; restarting in 0.05 s (attempt 1 of 3).',
      'crasher exited with code 3; restarting in 0.1 s (attempt 2 of 3).',
      'crasher exited with code 3; restarting in 0.15 s (attempt 3 of 3).',
      'crasher exited with code 3: 4 crashes within 60 s, more than the 3 restarts allowed; giving up.',
    ]);
    expect(message).toBe(reports[3]!.line);
    expect(launched).toHaveLength(4);
    expect(supervisor.launches).toBe(4);
    expect(new Set(launched.map((l) => l.pid)).size).toBe(4);
    // Each restart came no sooner than its delay after the crash was seen.
    const gaps = [0, 1, 2].map((i) => launched[i + 1]!.at - reports[i]!.at);
    console.log(`crash → next launch: ${gaps.map((g) => `${g.toFixed(0)} ms`).join(', ')} (delays 50, 100, 150 ms)`);
    [50, 100, 150].forEach((delay, i) => expect(gaps[i]).toBeGreaterThanOrEqual(delay - 5));
    // Nothing more is started after giving up, and nothing is left running.
    await sleep(300);
    expect(launched).toHaveLength(4);
    expect(supervisor.running()).toBe(false);
    expect(supervisor.restartPending()).toBe(false);
    for (const { pid } of launched) expect(alive(pid!)).toBe(false);
  });

  it('when a process is killed by a signal, then the line says which signal', async () => {
    const { reports, gaveUp } = supervise("process.kill(process.pid, 'SIGKILL')", { initialDelayMs: 20, maxRestarts: 1 });
    await gaveUp;
    expect(reports[0]!.line).toBe('crasher was killed by SIGKILL; restarting in 0.02 s (attempt 1 of 1).');
  });

  it('when each process stayed up longer than stableAfterMs before crashing, then every restart is attempt 1 and it never gives up', async () => {
    const { supervisor, reports } = supervise('setTimeout(() => process.exit(3), 250)', { initialDelayMs: 20, maxRestarts: 1, stableAfterMs: 200 });
    await until('3 reports', 10_000, () => reports.length >= 3, 10);
    await supervisor.stop('SIGTERM', 1000);
    expect(reports.map((r) => r.line)).toEqual(Array(reports.length).fill('crasher exited with code 3; restarting in 0.02 s (attempt 1 of 1).'));
  });

  it('when stop() is called while a restart is pending, then the restart never happens', async () => {
    const { supervisor, launched, reports } = supervise('process.exit(3)', { initialDelayMs: 300 });
    await until('1 report', 10_000, () => reports.length === 1, 10);
    expect(supervisor.restartPending()).toBe(true);
    expect(await supervisor.stop('SIGTERM', 1000)).toBe(3);
    expect(supervisor.restartPending()).toBe(false);
    await sleep(500); // past the 300 ms the restart would have waited
    expect(launched).toHaveLength(1);
  });

  it('when it is asked whether to restart and the answer is no (pnpm start is stopping), then nothing is started', async () => {
    const { launched, reports } = supervise('process.exit(3)', { initialDelayMs: 20 }, { mayRestart: () => false });
    await until('1 report', 10_000, () => reports.length === 1, 10);
    await sleep(200);
    expect(launched).toHaveLength(1);
  });

  it('when a process exits before supervise() was called, then the supervisor leaves that exit to its caller', async () => {
    const { supervisor, launched, reports } = supervise('process.exit(3)', { initialDelayMs: 20 }, { supervise: false });
    expect(await supervisor.current.exited).toBe(3);
    await sleep(200);
    expect(reports).toEqual([]);
    expect(launched).toHaveLength(1);
  });

  it('when a process exits with code 0 on its own, then that counts as a crash too (a service is meant to run until stopped)', async () => {
    const { reports, gaveUp } = supervise('process.exit(0)', { initialDelayMs: 20, maxRestarts: 1 });
    await gaveUp;
    expect(reports[0]!.line).toBe('crasher exited with code 0; restarting in 0.02 s (attempt 1 of 1).');
  });
});
