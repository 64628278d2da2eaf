import { AppError } from '@ncc/service-kit';
import type { RequestSession, SessionUser, UserSessionIndex } from '@ncc/session';
import type { VisitsRepository } from '../data-access/visits-repository.js';
import type { AuditLog } from './audit.js';

const sessionNotFound = (): AppError => new AppError(404, 'SESSION_NOT_FOUND', 'No such session.');

export interface ListedSession {
  handle: string;
  createdAt: number;
  lastSeenAt: number;
  userAgent: string | undefined;
  current: boolean;
}

/**
 * The signed-in user's sessions (decision 012): list, end one, end all. Sessions are named by an
 * opaque handle, never by their id; a user can only see and end their own.
 */
export class UserSessions {
  constructor(
    private readonly index: UserSessionIndex,
    private readonly visits: VisitsRepository,
    private readonly audit: AuditLog,
  ) {}

  async list(user: SessionUser, session: RequestSession): Promise<ListedSession[]> {
    const entries = await this.index.list(user.userId);
    return entries.map((s) => ({ handle: s.handle, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, userAgent: s.userAgent, current: s.sid === session.id }));
  }

  /** Ends one of the user's sessions; true when it was the request's own (its cookie must go too). */
  async revoke(user: SessionUser, handle: string, session: RequestSession, ip: string | undefined): Promise<boolean> {
    const sid = await this.index.endByHandle(user.userId, handle);
    if (sid === null) throw sessionNotFound();
    await this.visits.remove(sid);
    const current = sid === session.id;
    this.audit.record('session.revoked', { userId: user.userId, ip, sid, current });
    if (current) await session.destroy();
    return current;
  }

  /** Ends every session of the user, the request's own included; returns how many. */
  async logoutAll(user: SessionUser, session: RequestSession, ip: string | undefined): Promise<number> {
    const current = session.id;
    const ended = new Set(await this.index.endAll(user.userId));
    // The current session ends too, even if its index entry had been lost.
    await session.destroy();
    ended.add(current);
    await Promise.all([...ended].map((sid) => this.visits.remove(sid)));
    this.audit.record('logout_all', { userId: user.userId, ip, sid: current, ended: ended.size });
    return ended.size;
  }
}
