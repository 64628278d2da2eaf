import { AppError, httpErrors, type Logger } from '@ncc/service-kit';
import type { RequestSession, SessionUser, UserSessionIndex } from '@ncc/session';
import type { UserRecord, UsersRepository } from '../data-access/users-repository.js';
import type { VisitsRepository } from '../data-access/visits-repository.js';
import type { AuditLog } from './audit.js';
import type { LoginLimiter } from './login-limiter.js';
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

export const invalidCredentials = (): AppError => new AppError(401, 'INVALID_CREDENTIALS', 'Invalid login.');

export interface LoginDeps {
  users: UsersRepository;
  passwords: PasswordHasher;
  limiter: LoginLimiter;
  sessions: UserSessionIndex;
  visits: VisitsRepository;
  audit: AuditLog;
  logger: Logger;
}

export interface LoginAttempt {
  email: string;
  password: string;
  ip: string | undefined;
  userAgent: string | undefined;
}

/** What GET /me shows: the account (no hash) and when the session began. */
export interface Profile {
  user: PublicUser;
  createdAt: number | undefined;
}

/** Signing in and out: the use cases behind POST /login, /logout and GET /me. */
export class LoginService {
  constructor(private readonly deps: LoginDeps) {}

  /**
   * Checks credentials. Every failure path costs one bcrypt compare and returns the same null, so
   * "unknown email", "wrong password" and "corrupt record" are indistinguishable from outside.
   */
  async authenticate(email: string, password: string): Promise<PublicUser | null> {
    const { users, passwords, logger } = this.deps;
    // Always two round trips (email index, then user hash): an unknown email reads `ncc:user:0`, which
    // never exists (ids are positive), so it costs what a known one does — under load one extra round
    // trip was a measurable timing difference (docs/decisions/015-enumeration-timing.md).
    const id = await users.idForEmail(email);
    const user = await users.findById(id !== null && Number.isSafeInteger(id) && id > 0 ? id : 0);
    if (!user) {
      await passwords.verifyDummy(password);
      return null;
    }
    if (!user.passwordHash) {
      logger.warn('User record has no password hash; refusing login.', { userId: user.id });
      await passwords.verifyDummy(password);
      return null;
    }
    const ok = await passwords.verify(password, user.passwordHash);
    return ok ? publicUser(user) : null;
  }

  /**
   * A login: rate limit → password → a new session id → the user's session index → saved. Throws
   * 429 (over the limit), 401 (wrong credentials) or 503 (Redis, overload) and then leaves no session.
   */
  async login({ email, password, ip, userAgent }: LoginAttempt, session: RequestSession): Promise<PublicUser> {
    const { limiter, sessions, visits, audit } = this.deps;
    // The session the client arrived with, if any (anonymous visits or an earlier login): for the audit
    // trail, and to clean up after it once the login has replaced it.
    const previous = session.stored ? { sid: session.id, userId: session.userId } : undefined;
    // Brute force (decision 010): one compare is reserved before the password is checked, atomically
    // in Redis, so concurrent attempts cannot overrun the limit; identical for unknown emails.
    const retryAfter = await limiter.reserve(email, ip);
    if (retryAfter !== null) {
      audit.record('login.rate_limited', { email, ip, sid: previous?.sid });
      throw httpErrors.tooManyRequests(retryAfter);
    }
    let user: PublicUser | null;
    try {
      user = await this.authenticate(email, password);
    } catch (err) {
      // No answer about the password (hashing overloaded, Redis away): not a failed login.
      await limiter.release(email, ip).catch(() => undefined);
      throw err;
    }
    if (!user) {
      audit.record('login.failed', { email, ip, sid: previous?.sid });
      throw invalidCredentials();
    }
    await limiter.recordSuccess(email, ip);
    // A new id on every login: whatever id the client had before (fixation) is destroyed.
    await session.regenerate();
    if (previous) {
      await visits.remove(previous.sid);
      if (previous.userId !== undefined) await sessions.remove(previous.userId, previous.sid);
    }
    const createdAt = session.signIn({ userId: user.id, email: user.email, userAgent });
    let evicted: string[];
    try {
      // Indexed before it is saved: a session that exists can always be listed and revoked (decision 012).
      evicted = await sessions.add(user.id, session.id, createdAt);
      await session.save();
      // …and again once saved: a clean-up that ran in between dropped the then keyless member.
      await sessions.confirm(user.id, session.id, createdAt);
    } catch (err) {
      // Leave nothing half-made: without a session express-session neither auto-saves nor sets a cookie.
      await session.destroy().catch(() => undefined);
      throw err;
    }
    // Past MAX_SESSIONS_PER_USER the least recently active sessions were ended: a stolen password
    // cannot mint unbounded sessions, and the owner can see in the audit trail that it happened.
    for (const sid of evicted) {
      await visits.remove(sid);
      audit.record('session.evicted', { userId: user.id, ip, sid, reason: 'max_sessions_per_user' });
    }
    audit.record('login.succeeded', { userId: user.id, email: user.email, ip, sid: session.id }, `User ${user.email} logged in.`);
    return user;
  }

  /** Ends the request's session, whatever it is (none, anonymous, logged in). */
  async logout(session: RequestSession, ip: string | undefined): Promise<void> {
    const { sessions, visits, audit, logger } = this.deps;
    if (!session.stored) {
      logger.debug('Logout called by a user without a session.');
      return;
    }
    const { id: sid, userId, email } = session;
    await session.destroy();
    await visits.remove(sid);
    if (userId === undefined) {
      logger.debug('Ended an anonymous session.');
      return;
    }
    await sessions.remove(userId, sid);
    audit.record('logout', { userId, email, ip, sid }, `Logged out user ${email ?? userId}.`);
  }

  /** The signed-in account; null when it is gone — and so, then, is this session. */
  async me(user: SessionUser, session: RequestSession): Promise<Profile | null> {
    const profile = await this.profile(user);
    if (!profile) await session.destroy();
    return profile;
  }

  /** The signed-in account, read only; null when it is gone (me() then also ends the session). */
  async profile(user: SessionUser): Promise<Profile | null> {
    const account = await this.deps.users.findById(user.userId);
    return account ? { user: publicUser(account), createdAt: user.createdAt } : null;
  }
}
