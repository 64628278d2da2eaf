import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { inSpan } from '@ncc/service-kit';
import type { BcryptTask, BcryptWorkerData } from './bcrypt-worker.js';

/** bcrypt ignores bytes past 72; longer passwords are refused at validation instead of truncated. */
export const MAX_PASSWORD_BYTES = 72;

/** bcrypt costs the service accepts (BCRYPT_ROUNDS, seeded hashes): below 10 is too cheap to brute-force. */
export const BCRYPT_COST = { min: 10, max: 15, default: 10 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spend the same time as a real verify, for logins whose user does not exist. */
  verifyDummy(password: string): Promise<void>;
  /** Prepare whatever the first compare would otherwise pay for (the dummy hash). */
  warmUp?(): Promise<void>;
  close(): Promise<void>;
}

export interface BcryptHasherOptions {
  /** Worker threads; defaults to the cores this process may use (os.availableParallelism()). */
  threads?: number;
  /**
   * Hashes/compares allowed to wait for a thread. Past it a login fails at once with `overloaded()`
   * instead of waiting behind seconds of queued bcrypt work (at ~70 ms a compare on 2 threads, 1000
   * queued is ~35 s: longer than any client waits). Default 1000.
   */
  maxQueue?: number;
  /** The error thrown when the queue is full; the service passes a 503. */
  overloaded?: () => Error;
}

/**
 * Nice value of the bcrypt threads (Linux sets it per thread; the event loop and V8's helper threads
 * stay at the process' nice). With one thread per core, bcrypt keeps every core busy during a login
 * burst; a nice-0 thread that becomes runnable next to a nice-N one gets the core at once and then
 * keeps 1024/(1024+w(N)) of it: 90 % at nice 10 (w = 110), 98.5 % at nice 19 (w = 15). 19 measured
 * slightly better for /healthz (p99 7.5 vs 9.5 ms during a storm) but leaves bcrypt 1.5 % of a core
 * against any other busy nice-0 process on the machine, so logins could stall for seconds on a shared
 * host; at 10 the login storm still meets its /healthz target (docs/performance.md).
 */
export const BCRYPT_THREAD_NICE = 10;

/** Thrown when the hashing queue is full (unless the service supplies its own error). */
export class HasherOverloadedError extends Error {
  constructor() {
    super('Too many password checks are waiting; try again shortly.');
    this.name = 'HasherOverloadedError';
  }
}

/**
 * Where the worker module is. After `pnpm build` only `bcrypt-worker.js` exists next to this file and
 * plain node loads it. From source (vitest, `pnpm auth` via tsx) there is only `bcrypt-worker.ts`:
 * the worker thread then needs tsx's loader, which it does not get from vitest, so it is passed in.
 */
export function bcryptWorkerModule(): { filename: string; execArgv: string[] | undefined } {
  const js = fileURLToPath(new URL('./bcrypt-worker.js', import.meta.url));
  if (existsSync(js)) return { filename: js, execArgv: undefined };
  const ts = fileURLToPath(new URL('./bcrypt-worker.ts', import.meta.url));
  const hasTsx = process.execArgv.some((arg, i, all) => arg === '--import=tsx' || (arg === '--import' && all[i + 1] === 'tsx'));
  return { filename: ts, execArgv: hasTsx ? process.execArgv : [...process.execArgv, '--import', 'tsx'] };
}

const DUMMY_PASSWORD = 'ncc-dummy-password-for-timing';

/**
 * bcrypt (bcryptjs) on a pool of worker threads, one per core. A compare at cost 10 is ~50–100 ms of
 * pure CPU; on the event loop (even through bcryptjs' async API, which only slices the work) every
 * other request — health checks, checkins on the same box — would queue behind it, and logins could
 * use one core at most. The pool keeps the event loop free and lets logins use every core.
 *
 * The dummy hash is made once at the configured cost: an unknown email costs one full compare,
 * exactly like a wrong password, and response times do not reveal which emails exist.
 */
export class BcryptHasher implements PasswordHasher {
  private dummy: Promise<string> | undefined;
  private pool: Piscina<BcryptTask, string | boolean> | undefined;

  constructor(
    private readonly rounds: number,
    private readonly options: BcryptHasherOptions = {},
  ) {}

  /** Threads are started on first use, so code that never hashes (most tests) starts none. */
  private workers(): Piscina<BcryptTask, string | boolean> {
    if (!this.pool) {
      const threads = Math.max(1, this.options.threads ?? availableParallelism());
      const { filename, execArgv } = bcryptWorkerModule();
      this.pool = new Piscina<BcryptTask, string | boolean>({
        filename,
        ...(execArgv ? { execArgv } : {}),
        minThreads: threads,
        maxThreads: threads,
        // Logins wait here when every thread is busy, up to a bound (see BcryptHasherOptions.maxQueue).
        maxQueue: Number.POSITIVE_INFINITY,
        idleTimeout: 60_000,
        workerData: { nice: BCRYPT_THREAD_NICE } satisfies BcryptWorkerData,
      });
    }
    return this.pool;
  }

  private run(task: BcryptTask): Promise<string | boolean> {
    const pool = this.workers();
    if (pool.queueSize >= (this.options.maxQueue ?? 1000)) {
      return Promise.reject(this.options.overloaded?.() ?? new HasherOverloadedError());
    }
    // A span per compare/hash (queue wait + work): a slow login shows whether bcrypt or Redis took the time.
    // The same name for a real and a dummy compare, as everything else about them is the same.
    return inSpan(`bcrypt.${task.op}`, {}, () => pool.run(task));
  }

  async hash(password: string): Promise<string> {
    return (await this.run({ op: 'hash', password, rounds: this.rounds })) as string;
  }

  async verify(password: string, hash: string): Promise<boolean> {
    return (await this.run({ op: 'compare', password, hash })) === true;
  }

  async verifyDummy(password: string): Promise<void> {
    // Straight to the pool, not through verify(): a dummy compare is not a password check (and code
    // that counts verify() calls must not see one).
    await this.run({ op: 'compare', password, hash: await this.dummyHash() });
  }

  /** The hash unknown emails are compared against: made once, at the configured cost. */
  dummyHash(): Promise<string> {
    this.dummy ??= this.hash(DUMMY_PASSWORD);
    return this.dummy;
  }

  /** Hashes and compares the threads have finished (every dummy compare included). */
  get completedTasks(): number {
    return this.pool?.completed ?? 0;
  }

  /** Start the threads and make the dummy hash before the first login, so that one is not faster. */
  async warmUp(): Promise<void> {
    await this.dummyHash();
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
