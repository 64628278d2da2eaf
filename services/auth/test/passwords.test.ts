/**
 * The bcrypt worker pool behind PasswordHasher: correct hashes and compares from worker threads, the
 * dummy compare for unknown emails, the event loop staying free while compares run. (Compiled to
 * JavaScript under plain node, and in the real auth process: passwords.e2e.test.ts.)
 */
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { BcryptHasher, HasherOverloadedError } from '../src/domain/passwords.js';

const hasher = new BcryptHasher(10, { threads: 2 });

afterAll(async () => {
  await hasher.close();
});

describe('BcryptHasher on worker threads', () => {
  it('when a password is hashed, then the hash is a cost-10 $2b$ bcrypt hash that bcryptjs itself accepts', async () => {
    const hash = await hasher.hash('secret123');
    expect(hash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(bcrypt.compareSync('secret123', hash)).toBe(true);
  });

  it('when compared, then the right password verifies, a wrong one does not, and a malformed hash is false rather than an error', async () => {
    const hash = bcrypt.hashSync('secret123', 10);
    await expect(hasher.verify('secret123', hash)).resolves.toBe(true);
    await expect(hasher.verify('secret124', hash)).resolves.toBe(false);
    await expect(hasher.verify('secret123', 'not-a-bcrypt-hash')).resolves.toBe(false);
    await expect(hasher.verify('secret123', '')).resolves.toBe(false);
  });

  it('when an unknown email logs in, then the dummy compare is one full compare on the pool against a hash of the configured cost (not zero work)', async () => {
    await hasher.warmUp();
    expect(bcrypt.getRounds(await hasher.dummyHash())).toBe(10);
    const before = hasher.completedTasks;
    await hasher.verifyDummy('wrong');
    await hasher.verifyDummy('another wrong one');
    // Two compares and nothing else: the dummy hash is made once, not per unknown email.
    expect(hasher.completedTasks - before).toBe(2);
  });

  it('when several compares run at once, then the event loop keeps ticking (no multi-ms stall per compare)', async () => {
    const hash = bcrypt.hashSync('secret123', 10);
    let ticks = 0;
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 1);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => hasher.verify(i % 2 === 0 ? 'secret123' : 'nope', hash)));
    clearInterval(timer);
    expect(results).toEqual([true, false, true, false, true, false, true, false]);
    expect(ticks).toBeGreaterThan(10);
    // One cost-10 compare is ~50–100 ms of CPU; on the event loop a gap would be at least that.
    // Loose bound: the machine is shared, so allow scheduling noise but not a compare's worth.
    expect(worstGap).toBeLessThan(250);
  });
});

describe('BcryptHasher queue bound', () => {
  it('when more compares wait than maxQueue allows, then the extra ones fail at once with the overload error and the rest still answer', async () => {
    const small = new BcryptHasher(10, { threads: 1, maxQueue: 1 });
    try {
      const hash = bcrypt.hashSync('secret123', 10);
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => small.verify('secret123', hash)));
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled.length).toBeGreaterThanOrEqual(1);
      expect(fulfilled.every((r) => r.value === true)).toBe(true);
      expect(rejected.length).toBeGreaterThanOrEqual(1);
      expect(rejected.every((r) => r.reason instanceof HasherOverloadedError)).toBe(true);
      // A custom error (the service passes a 503) replaces the default one.
      const custom = new BcryptHasher(10, { threads: 1, maxQueue: 0, overloaded: () => new RangeError('busy') });
      await expect(custom.verify('x', hash)).rejects.toThrow(RangeError);
      await custom.close();
    } finally {
      await small.close();
    }
  });
});
