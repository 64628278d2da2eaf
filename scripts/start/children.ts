import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

const WIDTH = '[processor]'.length;

/** `[name]` padded so that every process's lines start in the same column. */
export function prefix(name: string): string {
  return `[${name}]`.padEnd(WIDTH, ' ');
}

export function say(message: string): void {
  for (const line of message.split('\n')) process.stdout.write(`${prefix('start')} ${line}\n`);
}

export function complain(message: string): void {
  for (const line of message.split('\n')) process.stderr.write(`${prefix('start')} ${line}\n`);
}

export interface Managed {
  name: string;
  /** undefined only when the process could not be spawned at all. */
  pid: number | undefined;
  child: ChildProcess;
  /** Resolves once the process runs; rejects with the spawn error (ENOENT: not on PATH). */
  started: Promise<void>;
  /** Resolves once the process has exited (or failed to spawn), with its code or signal. */
  exited: Promise<number | string>;
  running(): boolean;
  /** `signal`, then SIGKILL if it is still there after `timeoutMs`. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number | string>;
}

/**
 * Spawn a process that `pnpm start` owns, its output prefixed line by line with its name. Returns at
 * once (before the process runs), so the caller can record it before anything else can happen —
 * a Ctrl-C a millisecond later must still find it to stop it.
 * Detached (its own process group): a Ctrl-C in the terminal reaches only `pnpm start`, which then
 * stops the services before the Redis they use, in that order, instead of everything at once.
 */
export function launch(name: string, command: string, args: string[], options: SpawnOptions): Managed {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      // A spawn failure emits 'error' and no 'exit'.
      if (child.pid === undefined) {
        done = true;
        resolve((err as NodeJS.ErrnoException).code ?? 'error');
      }
    });
  });
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  started.catch(() => undefined);
  for (const [stream, out] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ] as const) {
    if (stream) createInterface({ input: stream }).on('line', (line) => out.write(`${prefix(name)} ${line}\n`));
  }
  const running = (): boolean => !done;
  return {
    name,
    pid: child.pid,
    child,
    started,
    exited,
    running,
    stop: async (signal, timeoutMs) => {
      if (!running()) return exited;
      child.kill(signal);
      const timer = setTimeout(() => {
        complain(`${name} did not stop within ${timeoutMs} ms; killing it.`);
        child.kill('SIGKILL');
      }, timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
