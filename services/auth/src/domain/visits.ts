import { httpErrors } from '@ncc/service-kit';
import { idleTtlSeconds, type RequestSession, type SessionSettings } from '@ncc/session';
import type { VisitsRepository } from '../data-access/visits-repository.js';
import type { VisitLimiter } from './visit-limiter.js';

/** The seed's visit counter, per browser session: the one use case that may start an anonymous session. */
export class VisitCounter {
  constructor(
    private readonly visits: VisitsRepository,
    private readonly limiter: VisitLimiter,
    private readonly settings: Pick<SessionSettings, 'ttlSeconds' | 'anonymousTtlSeconds'>,
  ) {}

  async count(session: RequestSession, ip: string | undefined): Promise<number> {
    if (!session.stored) {
      // Each new anonymous session costs two keys for SESSION_ANONYMOUS_TTL_S, so a client may only make so many.
      const retryAfter = await this.limiter.reserve(ip);
      if (retryAfter !== null) throw httpErrors.tooManyRequests(retryAfter);
      session.startAnonymous();
      await session.save();
    }
    return this.visits.increment(session.id, idleTtlSeconds(this.settings, session));
  }
}
