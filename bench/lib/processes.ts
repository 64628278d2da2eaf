/**
 * Start and stop the processes under test: the two services (from dist/ by default, as production
 * runs them, or from the TypeScript source through tsx), optionally as node:cluster workers, and the
 * bare-Express baseline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Started {
  name: string;
  url: string;
  pid: number | undefined;
  output(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export type Mode = 'dist' | 'source';

/** node arguments that run a service's entry point in the given mode. */
export function serviceArgs(name: 'auth' | 'checkin', mode: Mode): string[] {
  if (mode === 'source') return ['--conditions=ncc-source', '--import', 'tsx', `services/${name}/src/main.ts`];
  const entry = `services/${name}/dist/main.js`;
  if (!existsSync(`${ROOT}${entry}`)) throw new Error(`${entry} is missing: run \`pnpm build\` first (or pass --source).`);
  return [entry];
}

async function waitForHttp(url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before answering:\n${output()}`);
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
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
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
