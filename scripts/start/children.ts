import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

const WIDTH = '[checkin]'.length;

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
  pid: number;
  child: ChildProcess;
  /** Resolves once the process has exited, with its code or signal. */
  exited: Promise<number | string>;
  running(): boolean;
  /** `signal`, then SIGKILL if it is still there after `timeoutMs`. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number | string>;
}

/**
 * Spawn a process that `pnpm start` owns, its output prefixed line by line with its name.
 * Detached (its own process group): a Ctrl-C in the terminal reaches only `pnpm start`, which then
 * stops the services before the Redis they use, in that order, instead of everything at once.
 */
export function launch(name: string, command: string, args: string[], options: SpawnOptions): Promise<Managed> {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
        if (stream) createInterface({ input: stream }).on('line', (line) => out.write(`${prefix(name)} ${line}\n`));
      }
      const exited = new Promise<number | string>((done) => child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')));
      const running = (): boolean => child.exitCode === null && child.signalCode === null;
      resolve({
        name,
        pid: child.pid!,
        child,
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
      });
    });
  });
}
