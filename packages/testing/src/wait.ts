/**
 * Waiting in tests. A fixed sleep is right only when the time itself is the subject ("nothing happens
 * for 300 ms", "a request every 500 ms"); to wait for something to happen, poll for it with `until`
 * (or vitest's `vi.waitFor` when the probe is an assertion), so the test waits exactly as long as needed
 * and fails with a message when it never happens.
 */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Call `probe` every `everyMs` until it returns something other than `undefined` or `false`, and
 * resolve with that value. A probe that throws counts as "not yet" (the last error is reported).
 * Rejects naming `what` once `timeoutMs` has passed. The timeout is a give-up bound, not an assertion:
 * a test that cares how long it took measures that itself and asserts a tighter bound.
 */
export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (performance.now() >= deadline)
      throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`);
    await sleep(everyMs);
  }
}
