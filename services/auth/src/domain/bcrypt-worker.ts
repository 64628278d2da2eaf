/**
 * Runs inside a piscina worker thread (see passwords.ts). bcrypt is pure CPU work: here the sync API
 * is the fastest choice, because it blocks only this worker thread, never the service's event loop.
 * Kept free of workspace imports so it loads the same way from source (tsx) and from dist (plain node).
 */
import { setPriority } from 'node:os';
import bcrypt from 'bcryptjs';
import { workerData } from 'piscina';

export type BcryptTask = { op: 'hash'; password: string; rounds: number } | { op: 'compare'; password: string; hash: string };

export interface BcryptWorkerData {
  /** Nice value for this thread (Linux: per thread); see BCRYPT_THREAD_NICE in passwords.ts. */
  nice: number;
}

const { nice } = (workerData ?? { nice: 0 }) as BcryptWorkerData;
if (nice > 0) {
  try {
    // pid 0 = the calling thread on Linux: only this bcrypt thread yields to the event loop.
    setPriority(0, nice);
  } catch {
    // Not permitted or not supported here: run at normal priority.
  }
}

export default function run(task: BcryptTask): string | boolean {
  if (task.op === 'hash') return bcrypt.hashSync(task.password, task.rounds);
  try {
    return bcrypt.compareSync(task.password, task.hash);
  } catch {
    // A malformed stored hash is a wrong password, not a 500.
    return false;
  }
}
