import { z } from 'zod';
import { AppError, httpErrors, type Logger } from '@ncc/service-kit';
import type { SessionUser } from '@ncc/session';
import type { Checkin, CheckinStream } from '../data-access/checkin-stream.js';

export const checkinBodySchema = z.strictObject({
  userId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  locationId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  starRating: z.number().int().min(0).max(5),
});

const duplicateCheckin = (): AppError => new AppError(422, 'DUPLICATE_CHECKIN', 'Multiple identical checkins are not permitted.');
/** The stream is at CHECKIN_STREAM_MAXLEN: processing is behind, so this checkin is refused rather than dropped later. */
const backlogFull = (): AppError =>
  new AppError(503, 'CHECKINS_BACKLOGGED', 'Too many checkins are waiting to be processed. Please retry shortly.', { headers: { 'Retry-After': '5' } });

export class CheckinService {
  private lastFullWarning = 0;

  constructor(
    private readonly stream: CheckinStream,
    private readonly logger: Logger,
  ) {}

  /**
   * Accept a checkin for `user` (undefined only when authentication is switched off). Resolves with
   * the stream entry id once Redis has acknowledged the write — never before.
   */
  async accept(checkin: Checkin, user: SessionUser | undefined): Promise<string> {
    if (user && checkin.userId !== user.userId) {
      throw httpErrors.forbidden('You can only check in as yourself.');
    }
    const result = await this.stream.append(checkin, Date.now());
    if (result.outcome === 'duplicate') throw duplicateCheckin();
    if (result.outcome === 'rate_limited') throw httpErrors.tooManyRequests(result.retryAfterMs / 1000);
    if (result.outcome === 'full') {
      if (Date.now() - this.lastFullWarning > 10_000) {
        this.lastFullWarning = Date.now();
        this.logger.warn('Checkins refused with 503: ncc:checkins is at CHECKIN_STREAM_MAXLEN, processing is behind (is the processor running?).');
      }
      throw backlogFull();
    }
    this.logger.debug(`Received checkin, added to stream as ${result.id}.`);
    return result.id;
  }
}
