import { Router } from 'express';
import { optionalJsonBody } from '@ncc/service-kit';
import { clearSessionCookie, currentUser, requestSession, requireUser, type SessionSettings } from '@ncc/session';
import type { UserSessions } from '../domain/user-sessions.js';

export interface SessionRouteDeps {
  userSessions: UserSessions;
  settings: SessionSettings;
}

/** GET /sessions, DELETE /sessions/:handle, POST /logout-all (decision 012). */
export function sessionRoutes({ userSessions, settings }: SessionRouteDeps): Router {
  const router = Router();

  router.get('/sessions', requireUser, async (req, res) => {
    const list = await userSessions.list(currentUser(req), requestSession(req));
    res.status(200).json({
      sessions: list.map((s) => ({
        handle: s.handle,
        createdAt: new Date(s.createdAt).toISOString(),
        lastSeenAt: new Date(s.lastSeenAt).toISOString(),
        userAgent: s.userAgent ?? null,
        current: s.current,
      })),
    });
  });

  router.delete('/sessions/:handle', requireUser, ...optionalJsonBody(), async (req, res) => {
    const endedCurrent = await userSessions.revoke(currentUser(req), String(req.params['handle']), requestSession(req), req.ip);
    if (endedCurrent) clearSessionCookie(res, settings);
    res.status(200).json({ status: 'OK' });
  });

  router.post('/logout-all', requireUser, ...optionalJsonBody(), async (req, res) => {
    const ended = await userSessions.logoutAll(currentUser(req), requestSession(req), req.ip);
    clearSessionCookie(res, settings);
    res.status(200).json({ status: 'OK', ended });
  });

  return router;
}
