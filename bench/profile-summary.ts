/**
 * Summarise V8 CPU profiles written by `pnpm bench --cpu-prof`: where the service's CPU went, as self
 * time per function and per package (node_modules/<pkg>, the workspace's own code, node internals,
 * GC and idle). Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Summary {
  totalMs: number;
  busyMs: number;
  byFunction: { name: string; ms: number; share: number }[];
  byPackage: { name: string; ms: number; share: number }[];
  /** Time with the function anywhere on the stack (each function counted once per sample). */
  inclusive: { name: string; ms: number; share: number }[];
}

function packageOf(url: string, fn: string): string {
  if (fn === '(idle)' || fn === '(garbage collector)' || fn === '(program)') return fn;
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[1]!;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (plain) return plain[1]!;
  const own = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (own) return `@ncc/${own[2]}`;
  if (url.startsWith('node:') || url === '') return 'node (internals)';
  return url;
}

export function summarise(profile: Profile, top = 25): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    total += us;
    if (name === '(idle)') idle += us;
    const file = url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/(packages|services)\//, '$1/');
    const key = `${name} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const p = packageOf(url, name);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
  }
  const busy = total - idle;
  // Inclusive time: walk each sampled node up to the root, crediting every distinct frame once.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode): string => {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/(packages|services)\//, '$1/');
    return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
  };
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = label(byId.get(cur)!);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .filter(([name]) => name !== '(idle)' && !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: us / busy }));
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    byFunction: rank(fn),
    byPackage: rank(pkg),
    inclusive: rank(new Map([...incl].filter(([k]) => !k.startsWith('(root)')))),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 25));
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`.padStart(6);
  process.stdout.write(`${file}: ${s.totalMs.toFixed(0)} ms sampled, ${s.busyMs.toFixed(0)} ms busy (not idle)\n\nBy package (self time, share of busy):\n`);
  for (const p of s.byPackage) process.stdout.write(`  ${pct(p.share)}  ${p.ms.toFixed(0).padStart(7)} ms  ${p.name}\n`);
  process.stdout.write('\nBy function (self time):\n');
  for (const f of s.byFunction) process.stdout.write(`  ${pct(f.share)}  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}\n`);
  process.stdout.write('\nBy function (inclusive: on the stack):\n');
  for (const f of s.inclusive) process.stdout.write(`  ${pct(f.share)}  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}\n`);
}
