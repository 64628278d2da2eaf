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

export class CheckinService {
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
    this.logger.debug(`Received checkin, added to stream as ${result.id}.`);
    return result.id;
  }
}
