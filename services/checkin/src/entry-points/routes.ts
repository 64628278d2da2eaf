import { Router } from 'express';
import { jsonBody, type Logger, parseBody } from '@ncc/service-kit';
import { currentUser, requireSessionUser, type SessionReader } from '@ncc/session';
import { type CheckinService, checkinBodySchema } from '../domain/checkins.js';

export interface CheckinRouteDeps {
  checkins: CheckinService;
  /** undefined when authentication is switched off. */
  reader: SessionReader | undefined;
  logger: Logger;
}

export function checkinRoutes({ checkins, reader, logger }: CheckinRouteDeps): Router {
  const router = Router();
  // The session is checked first: a request without one is refused before its body is even read,
  // and without a cookie it costs no Redis call at all.
  const authenticate = reader ? [requireSessionUser(reader, () => logger.debug('Rejecting checkin - no valid user session found.'))] : [];
  router.post('/api/checkin', ...authenticate, ...jsonBody(), async (req, res) => {
    const checkin = parseBody(checkinBodySchema, req.body);
    const id = await checkins.accept(checkin, reader ? currentUser(req) : undefined);
    res.status(202).json({ id });
  });
  return router;
}
