import { z } from 'zod';
import type { LocationStats, StatsRepository, UserStats } from '@ncc/checkins';
import { httpErrors } from '@ncc/service-kit';
import type { SessionUser } from '@ncc/session';

/** A path id: a positive whole number (no sign, no leading zero, no exponent), at most Number.MAX_SAFE_INTEGER. */
const pathId = z
  .string()
  .regex(/^[1-9]\d{0,15}$/)
  .transform(Number)
  .refine((n) => n <= Number.MAX_SAFE_INTEGER);

export function parsePathId(value: unknown): number {
  const result = pathId.safeParse(value);
  if (!result.success) throw httpErrors.validation(['id'], 'The id in the path must be a positive whole number.');
  return result.data;
}

/** The statistics the processor keeps, for the read API. */
export class StatsService {
  constructor(private readonly stats: StatsRepository) {}

  /** A user's own statistics: where someone was last seen is theirs to read (undefined viewer: authentication off). */
  async user(userId: number, viewer: SessionUser | undefined): Promise<UserStats> {
    if (viewer && viewer.userId !== userId) throw httpErrors.forbidden('You can only read your own stats.');
    const stats = await this.stats.user(userId);
    if (!stats) throw httpErrors.notFound('No such user.');
    return stats;
  }

  /** Any signed-in user may read a location's statistics; a location nobody has checked in at is unknown. */
  async location(locationId: number): Promise<LocationStats> {
    const stats = await this.stats.location(locationId);
    if (!stats) throw httpErrors.notFound('No checkins at this location yet.');
    return stats;
  }
}
