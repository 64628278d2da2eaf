import { type RequestHandler, Router } from 'express';
import { jsonBody, type Logger, parseBody } from '@ncc/service-kit';
import { currentUser, requireSessionUser, type SessionReader } from '@ncc/session';
import { type CheckinService, checkinBodySchema } from '../domain/checkins.js';
import { parsePathId, type StatsService } from '../domain/stats.js';

export interface CheckinRouteDeps {
  checkins: CheckinService;
  stats: StatsService;
  /** undefined when authentication is switched off. */
  reader: SessionReader | undefined;
  logger: Logger;
  /** ncc_checkins_total by the status POST /api/checkin answers with. */
  countCheckins: RequestHandler;
}

export function checkinRoutes({ checkins, stats, reader, logger, countCheckins }: CheckinRouteDeps): Router {
  const router = Router();
  // The session is checked first: a request without one is refused before its body is even read,
  // and without a cookie it costs no Redis call at all.
  const authenticate = (what: string) => (reader ? [requireSessionUser(reader, () => logger.debug(`Rejecting ${what} - no valid user session found.`))] : []);
  router.post('/api/checkin', countCheckins, ...authenticate('checkin'), ...jsonBody(), async (req, res) => {
    const checkin = parseBody(checkinBodySchema, req.body);
    const id = await checkins.accept(checkin, reader ? currentUser(req) : undefined);
    res.status(202).json({ id });
  });
  // The processor's statistics (numbers, never strings): served here, where the sessions are read
  // and the public API lives, so the processor exposes nothing but its health routes.
  router.get('/api/users/:id/stats', ...authenticate('stats request'), async (req, res) => {
    res.json(await stats.user(parsePathId(req.params['id']), reader ? currentUser(req) : undefined));
  });
  router.get('/api/locations/:id/stats', ...authenticate('stats request'), async (req, res) => {
    res.json(await stats.location(parsePathId(req.params['id'])));
  });
  return router;
}
