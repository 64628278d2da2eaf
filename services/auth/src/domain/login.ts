import type { Logger } from '@ncc/service-kit';
import type { UserRecord, UsersRepository } from '../data-access/users-repository.js';
import type { PasswordHasher } from './passwords.js';

export interface PublicUser {
  id: number;
  email: string;
  firstName: string;
  lastName: string;
}

export function publicUser(user: Pick<UserRecord, 'id' | 'email' | 'firstName' | 'lastName'>): PublicUser {
  return { id: user.id, email: user.email, firstName: user.firstName, lastName: user.lastName };
}

/**
 * Checks credentials. Every failure path costs one bcrypt compare and returns the same null, so
 * "unknown email", "wrong password" and "corrupt record" are indistinguishable from outside.
 */
export class LoginService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly logger: Logger,
  ) {}

  async authenticate(email: string, password: string): Promise<PublicUser | null> {
    // Always two round trips (email index, then user hash): an unknown email reads `ncc:user:0`, which
    // never exists (ids are positive), so it costs what a known one does — under load one extra round
    // trip was a measurable timing difference (docs/decisions/015-enumeration-timing.md).
    const id = await this.users.idForEmail(email);
    const user = await this.users.findById(id !== null && Number.isSafeInteger(id) && id > 0 ? id : 0);
    if (!user) {
      await this.passwords.verifyDummy(password);
      return null;
    }
    if (!user.passwordHash) {
      this.logger.warn('User record has no password hash; refusing login.', { userId: user.id });
      await this.passwords.verifyDummy(password);
      return null;
    }
    const ok = await this.passwords.verify(password, user.passwordHash);
    return ok ? publicUser(user) : null;
  }
}
