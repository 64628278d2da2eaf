import { DuplicateEmailError, type UsersRepository } from '../data-access/users-repository.js';
import type { PasswordHasher } from './passwords.js';
import type { SeedUser } from './schemas.js';

export class DuplicateIdError extends Error {
  constructor(readonly id: number) {
    super(`User id ${id} appears more than once.`);
  }
}

/** Refuse a user list in which two users share an id or an email (case-insensitively). */
export function checkUnique(users: readonly SeedUser[]): void {
  const byEmail = new Map<string, number>();
  const ids = new Set<number>();
  for (const user of users) {
    if (ids.has(user.id)) throw new DuplicateIdError(user.id);
    ids.add(user.id);
    const email = user.email.toLowerCase();
    const other = byEmail.get(email);
    if (other !== undefined) throw new DuplicateEmailError(email, [other, user.id]);
    byEmail.set(email, user.id);
  }
}

export interface SeedResult {
  created: number;
  updated: number;
  skipped: number;
}

/**
 * Idempotent: a user whose id exists is skipped unless `force`. Emails already held by another id in
 * Redis are refused with both ids named. Plaintext passwords are hashed a few at a time; a given
 * `passwordHash` is stored as it is.
 */
export async function seedUsers(
  users: readonly SeedUser[],
  deps: { repository: UsersRepository; hasher: PasswordHasher },
  options: { force: boolean; concurrency?: number } = { force: false },
): Promise<SeedResult> {
  checkUnique(users);
  for (const user of users) {
    const holder = await deps.repository.idForEmail(user.email);
    if (holder !== null && holder !== user.id) throw new DuplicateEmailError(user.email.toLowerCase(), [holder, user.id], true);
  }
  const result: SeedResult = { created: 0, updated: 0, skipped: 0 };
  const queue = [...users];
  const worker = async (): Promise<void> => {
    for (let user = queue.shift(); user; user = queue.shift()) {
      const exists = await deps.repository.exists(user.id);
      if (exists && !options.force) {
        result.skipped++;
        continue;
      }
      const passwordHash = user.passwordHash ?? (await deps.hasher.hash(user.password));
      await deps.repository.save({ id: user.id, firstName: user.firstName, lastName: user.lastName, email: user.email, passwordHash });
      if (exists) result.updated++;
      else result.created++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return result;
}
