/**
 * `pnpm start` for tests: the real script as a child process (what test/start.test.ts proves, and
 * what the browser tests run the page through).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { freePort } from '@ncc/testing';
import { ROOT } from './services.js';

export interface StartRun {
  child: ChildProcess;
  pid: number;
  authUrl: string;
  checkinUrl: string;
  processorUrl: string;
  gatewayUrl: string;
  output(): string;
  exited: Promise<number | string>;
  /** Resolves when the script prints its next steps (everything is up); rejects with the output if it exits first. */
  ready(timeoutMs?: number): Promise<void>;
  /** Every process below the script (children and theirs), from the process table. */
  descendants(): number[];
  signal(signal: NodeJS.Signals): Promise<number | string>;
}

const runs = new Set<ChildProcess>();

/** SIGTERM every start script still running (a failed test must not leave one, and its children, behind). */
export function stopStartRuns(): void {
  for (const child of runs) child.kill('SIGTERM');
}

/**
 * `pnpm start` (scripts/start.ts) as a child process with only what a shell would have plus `env`;
 * its own ports free ones unless `env` names them, the metrics listeners off unless it asks for them.
 */
export async function runStart(env: Record<string, string>): Promise<StartRun> {
  const authPort = env['AUTH_PORT'] ?? String(await freePort());
  const checkinPort = env['CHECKIN_PORT'] ?? String(await freePort());
  const processorPort = env['PROCESSOR_PORT'] ?? String(await freePort());
  const gatewayPort = env['GATEWAY_PORT'] ?? String(await freePort());
  // Metrics off unless a test asks for them: the defaults (9083/9082/9084) would clash between runs side
  // by side, and every port picked ahead of its use is one more a spawned process may take first (a
  // METRICS_PORT=0 listener elsewhere takes from the same ephemeral range).
  const metricsPorts = { AUTH_METRICS_PORT: 'off', CHECKIN_METRICS_PORT: 'off', PROCESSOR_METRICS_PORT: 'off' };
  const child = spawn(process.execPath, ['--conditions=ncc-source', '--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    // Only what a shell would have plus the test's settings: nothing leaks in from the test runner.
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      AUTH_PORT: authPort,
      CHECKIN_PORT: checkinPort,
      PROCESSOR_PORT: processorPort,
      GATEWAY_PORT: gatewayPort,
      ...metricsPorts,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  runs.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      runs.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return {
    child,
    pid: child.pid!,
    authUrl: `http://127.0.0.1:${authPort}`,
    checkinUrl: `http://127.0.0.1:${checkinPort}`,
    processorUrl: `http://127.0.0.1:${processorPort}`,
    gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
    output: () => output,
    exited,
    ready: (timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`pnpm start was not ready within ${timeoutMs} ms:\n${output}`)), timeoutMs);
        const check = (): void => {
          if (output.includes('Press Ctrl-C to stop')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', check);
        check();
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`pnpm start exited (${code}) before it was ready:\n${output}`));
        });
      }),
    descendants: () => descendantsOf(child.pid!),
    signal: async (signal) => {
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * Every process below `root`, from the process table, except esbuild: tsx compiles a file it has not
 * cached with a short-lived esbuild helper process, which comes and goes by itself.
 */
function descendantsOf(root: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  const children = new Map<number, { pid: number; command: string }[]>();
  for (const line of table.trim().split('\n')) {
    const [pid, ppid, command = ''] = line.trim().split(/\s+/);
    children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), { pid: Number(pid), command }]);
  }
  const found: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const kid of children.get(pid) ?? []) {
      if (kid.command === 'esbuild') continue;
      found.push(kid.pid);
      queue.push(kid.pid);
    }
  }
  return found.sort((a, b) => a - b);
}
