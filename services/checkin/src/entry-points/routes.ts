import { type RequestHandler, Router } from 'express';
import { jsonBody, type Logger, parseBody } from '@ncc/service-kit';
import { currentUser, requireSessionUser, type SessionReader } from '@ncc/session';
import { type CheckinService, checkinBodySchema } from '../domain/checkins.js';
import type { LiveCheckins, LiveEvent } from '../domain/live-checkins.js';
import { parsePathId, type StatsService } from '../domain/stats.js';
import { EventStream } from './event-stream.js';

export interface CheckinRouteDeps {
  checkins: CheckinService;
  stats: StatsService;
  live: LiveCheckins;
  /** undefined when authentication is switched off. */
  reader: SessionReader | undefined;
  logger: Logger;
  /** ncc_checkins_total by the status POST /api/checkin answers with. */
  countCheckins: RequestHandler;
}

/** How long EventSource waits before it reconnects a dropped live stream (its `retry:` field). */
const LIVE_RETRY_MS = 2000;

/** A hub event as a server-sent event: a checkin (JSON numbers) with its entry id as the event id; the others with `{}`. */
function sendLiveEvent(stream: EventStream, event: LiveEvent): void {
  switch (event.type) {
    case 'checkin':
      return stream.event('checkin', JSON.stringify(event.checkin), event.checkin.id);
    case 'heartbeat':
      return stream.comment('ping');
    default:
      return stream.event(event.type, '{}');
  }
}

export function checkinRoutes({ checkins, stats, live, reader, logger, countCheckins }: CheckinRouteDeps): Router {
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
  // Server-sent events for the page: every checkin accepted from now on, everyone's, from the one
  // reader of this process (LiveCheckins). The session is checked as for the other routes, and again
  // at every heartbeat by the hub.
  router.get('/api/checkins/live', ...authenticate('live view'), (req, res) => {
    const stream = new EventStream(res, LIVE_RETRY_MS);
    // HEAD has no body: its stream would stay open with nothing to say.
    if (req.method === 'HEAD') return stream.end();
    // The client left while its session was being read: nobody to subscribe, and no 'close' to come.
    if (req.destroyed) return;
    const leave = live.subscribe({
      send: (event) => sendLiveEvent(stream, event),
      end: () => stream.end(),
      stillSignedIn: reader ? async () => (await reader.readUser(req))?.userId === currentUser(req).userId : () => Promise.resolve(true),
    });
    // Only after subscribing: the hub's reader has then sent its first command (a reader that starts
    // sends XREVRANGE at once), so a checkin a client sends once it has these headers always comes
    // after the reader's starting point, and reaches it.
    stream.open();
    // A closed tab releases its subscription at once.
    req.once('close', leave);
  });
  return router;
}
