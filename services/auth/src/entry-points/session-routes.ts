import { Router } from 'express';
import { AppError, optionalJsonBody } from '@ncc/service-kit';
import { clearSessionCookie, destroySession, requireUser, type SessionSettings, type UserSessionIndex } from '@ncc/session';
import type { VisitsRepository } from '../data-access/visits-repository.js';
import type { AuditLog } from '../domain/audit.js';

export class SessionNotFoundError extends AppError {
  constructor() {
    super(404, 'SESSION_NOT_FOUND', 'No such session.');
  }
}

export interface SessionRouteDeps {
  sessions: UserSessionIndex;
  visits: VisitsRepository;
  settings: SessionSettings;
  audit: AuditLog;
}

/**
 * The signed-in user's sessions (decision 012): list, end one, end all. Sessions are named by an
 * opaque handle, never by their id; a user can only see and end their own.
 */
export function sessionRoutes({ sessions, visits, settings, audit }: SessionRouteDeps): Router {
  const router = Router();

  router.get('/sessions', requireUser, async (req, res) => {
    const list = await sessions.list(req.session.userId!);
    res.status(200).json({
      sessions: list.map((s) => ({
        handle: s.handle,
        createdAt: new Date(s.createdAt).toISOString(),
        lastSeenAt: new Date(s.lastSeenAt).toISOString(),
        userAgent: s.userAgent ?? null,
        current: s.sid === req.sessionID,
      })),
    });
  });

  router.delete('/sessions/:handle', requireUser, ...optionalJsonBody(), async (req, res) => {
    const userId = req.session.userId!;
    const sid = await sessions.endByHandle(userId, String(req.params['handle']));
    if (sid === null) throw new SessionNotFoundError();
    await visits.remove(sid);
    audit.record('session.revoked', { userId, ip: req.ip, sid, current: sid === req.sessionID });
    if (sid === req.sessionID) {
      await destroySession(req);
      clearSessionCookie(res, settings);
    }
    res.status(200).json({ status: 'OK' });
  });

  router.post('/logout-all', requireUser, ...optionalJsonBody(), async (req, res) => {
    const userId = req.session.userId!;
    const current = req.sessionID;
    const ended = new Set(await sessions.endAll(userId));
    // The current session ends too, even if its index entry had been lost.
    await destroySession(req);
    ended.add(current);
    await Promise.all([...ended].map((sid) => visits.remove(sid)));
    audit.record('logout_all', { userId, ip: req.ip, sid: current, ended: ended.size });
    clearSessionCookie(res, settings);
    res.status(200).json({ status: 'OK', ended: ended.size });
  });

  return router;
}
