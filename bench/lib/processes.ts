/**
 * Start and stop the processes under test: the services (from dist/ by default, as production
 * runs them, or from the TypeScript source through tsx), optionally as node:cluster workers, and the
 * bare-Express baseline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Started {
  name: string;
  url: string;
  pid: number | undefined;
  output(): string;
  /** CPU seconds (user + system) used so far by the process and its children (cluster workers). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Linux USER_HZ; /proc reports CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

function descendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const tid of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean)) out.push(...descendants(Number(tid)));
  } catch {
    // Gone, or no children file: just this pid.
  }
  return out;
}

/** utime + stime of a process (all its threads) from /proc/<pid>/stat, in seconds; 0 when gone. */
export function processCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of descendants(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces) start at ")".
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Exited meanwhile.
    }
  }
  return ticks / TICKS_PER_SECOND;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export type Mode = 'dist' | 'source';

/** node arguments that run a service's entry point in the given mode. */
export function serviceArgs(name: 'auth' | 'checkin' | 'processor', mode: Mode): string[] {
  if (mode === 'source') return ['--conditions=ncc-source', '--import', 'tsx', `services/${name}/src/main.ts`];
  const entry = `services/${name}/dist/main.js`;
  if (!existsSync(`${ROOT}${entry}`)) throw new Error(`${entry} is missing: run \`pnpm build\` first (or pass --source).`);
  return [entry];
}

async function waitForHttp(url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before answering:\n${output()}`);
    try {
      // Any HTTP answer means it listens (the baseline has no /healthz and answers 404).
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`no HTTP answer from ${url} within ${timeoutMs} ms:\n${output()}`);
}

export async function startProcess(name: string, args: string[], env: Record<string, string>, port: number): Promise<Started> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    // METRICS_PORT 0 unless the scenario says: metrics on (the services' default) on a free port.
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const keep = (d: Buffer): void => {
    // Enough to explain a failure; LOG_LEVEL=warn keeps this small anyway.
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, child, () => output);
  return {
    name,
    url,
    pid: child.pid,
    output: () => output,
    cpuSeconds: () => (child.pid === undefined ? 0 : processCpuSeconds(child.pid)),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `node bench/cluster.mjs N <args>`: N workers sharing the port. */
export function clustered(args: string[], workers: number): string[] {
  return workers > 1 ? ['bench/cluster.mjs', String(workers), ...args] : args;
}
