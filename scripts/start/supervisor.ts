import { z } from 'zod';
import { env, loadConfig } from '@ncc/service-kit';
import type { Managed } from './children.js';

/**
 * When `pnpm start` restarts a service that exited on its own (a crash: the services exit 1 after an
 * uncaught error, see runService), and when it gives up.
 */
export interface RestartPolicy {
  /** Delay before the first restart; doubled for each further crash within `windowMs`. */
  initialDelayMs: number;
  /** The delay never grows beyond this. */
  maxDelayMs: number;
  /** Restarts allowed within `windowMs`; the crash after that makes the supervisor give up. 0: never restart. */
  maxRestarts: number;
  /** Crashes longer ago than this are forgotten. */
  windowMs: number;
  /** A process that ran at least this long was healthy: the crashes before it are forgotten. */
  stableAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 8000,
  maxRestarts: 5,
  windowMs: 60_000,
  stableAfterMs: 30_000,
};

const restartEnvSchema = z.object({
  /** Delay before the first restart of a crashed service (then doubled per crash, at most 8 s). */
  NCC_RESTART_DELAY_MS: env.int(DEFAULT_RESTART_POLICY.initialDelayMs, 0, 60_000),
  /** Restarts of one service within 60 s before `pnpm start` gives up; 0 stops everything at the first crash. */
  NCC_RESTART_LIMIT: env.int(DEFAULT_RESTART_POLICY.maxRestarts, 0, 100),
});

/** The policy, with the two knobs `pnpm start` reads from the environment. Throws ConfigError naming a bad key. */
export function restartPolicyFromEnv(source: NodeJS.ProcessEnv): RestartPolicy {
  const parsed = loadConfig(restartEnvSchema, source);
  return {
    ...DEFAULT_RESTART_POLICY,
    initialDelayMs: parsed.NCC_RESTART_DELAY_MS,
    maxDelayMs: Math.max(DEFAULT_RESTART_POLICY.maxDelayMs, parsed.NCC_RESTART_DELAY_MS),
    maxRestarts: parsed.NCC_RESTART_LIMIT,
  };
}

export type CrashDecision = { restart: true; attempt: number; delayMs: number } | { restart: false; crashes: number };

/** The crash history of one service and what to do about the next crash. Pure: the caller passes the times. */
export class CrashTracker {
  private crashes: number[] = [];

  constructor(private readonly policy: RestartPolicy) {}

  /** A crash at `at` (ms) of a process that had run for `uptimeMs`. */
  crashed(at: number, uptimeMs: number): CrashDecision {
    if (uptimeMs >= this.policy.stableAfterMs) this.crashes = [];
    this.crashes = this.crashes.filter((t) => at - t < this.policy.windowMs);
    this.crashes.push(at);
    const attempt = this.crashes.length;
    if (attempt > this.policy.maxRestarts) return { restart: false, crashes: attempt };
    return { restart: true, attempt, delayMs: Math.min(this.policy.initialDelayMs * 2 ** (attempt - 1), this.policy.maxDelayMs) };
  }
}

/** "0.5 s", "1 s", "0.05 s". */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(2))} s`;
}

/** "exited with code 1", "was killed by SIGKILL", "could not be started (ENOENT)". */
export function describeExit(result: number | string): string {
  if (typeof result === 'number') return `exited with code ${result}`;
  if (result.startsWith('SIG')) return `was killed by ${result}`;
  return `could not be started (${result})`;
}

export interface SupervisorOptions {
  name: string;
  /** Starts a fresh process (the first one, and each restart). */
  launch: () => Managed;
  policy: RestartPolicy;
  /** Where the restart and give-up lines go (`pnpm start`: its stderr, prefixed [start]). */
  report: (line: string) => void;
  /** Asked before each restart; false (e.g. `pnpm start` is stopping anyway) skips it. */
  mayRestart?: () => boolean;
  /** Each process started after a crash, once it runs. */
  onRestarted?: (process: Managed, attempt: number) => void;
  /** Once, when crashes exceed the policy: nothing more is started. */
  onGiveUp: (message: string) => void;
  now?: () => number;
}

/**
 * One service under `pnpm start`: launched at once; after `supervise()`, each exit it did not ask for
 * (via `stop`) is a crash, answered by a restart after the policy's backoff, or by giving up.
 * Before `supervise()` an exit is left to the caller (a service that never got ready is a start-up failure).
 */
export class Supervisor {
  current: Managed;
  /** Processes launched so far, the first included. */
  launches = 1;
  private supervising = false;
  private stopped = false;
  private gaveUp = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly tracker: CrashTracker;
  private readonly now: () => number;

  constructor(private readonly options: SupervisorOptions) {
    this.tracker = new CrashTracker(options.policy);
    this.now = options.now ?? Date.now;
    this.current = options.launch();
    this.watch(this.current);
  }

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.current.pid;
  }

  get child(): Managed['child'] {
    return this.current.child;
  }

  /** Whether the current process runs (false while waiting to restart one). */
  running(): boolean {
    return this.current.running();
  }

  /** Whether a restart is scheduled and has not happened yet. */
  restartPending(): boolean {
    return this.timer !== undefined;
  }

  /** Whether the supervisor takes care of exits (restart or give up). */
  supervised(): boolean {
    return this.supervising;
  }

  /** From now on, restart the process when it exits on its own. */
  supervise(): void {
    this.supervising = true;
  }

  /** Cancel any pending restart, then stop the current process (`signal`, SIGKILL after `timeoutMs`). */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number | string> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.current.stop(signal, timeoutMs);
  }

  private watch(process: Managed): void {
    const launchedAt = this.now();
    void process.exited.then((result) => {
      if (!this.supervising || this.stopped || this.gaveUp || process !== this.current) return;
      this.crashed(result, this.now() - launchedAt);
    });
  }

  private crashed(result: number | string, uptimeMs: number): void {
    const { name, policy, report } = this.options;
    const decision = this.tracker.crashed(this.now(), uptimeMs);
    if (!decision.restart) {
      this.gaveUp = true;
      const message =
        policy.maxRestarts === 0
          ? `${name} ${describeExit(result)}; restarts are off (NCC_RESTART_LIMIT=0): giving up.`
          : `${name} ${describeExit(result)}: ${decision.crashes} crashes within ${seconds(policy.windowMs)}, more than the ${policy.maxRestarts} restarts allowed; giving up.`;
      report(message);
      this.options.onGiveUp(message);
      return;
    }
    report(`${name} ${describeExit(result)}; restarting in ${seconds(decision.delayMs)} (attempt ${decision.attempt} of ${policy.maxRestarts}).`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped || (this.options.mayRestart && !this.options.mayRestart())) return;
      const next = this.options.launch();
      this.current = next;
      this.launches += 1;
      this.watch(next);
      next.started.then(
        () => this.options.onRestarted?.(next, decision.attempt),
        () => undefined, // a spawn failure resolves `exited` too: it counts as the next crash
      );
    }, decision.delayMs);
  }
}
