import { CHECKIN_STREAM } from '@ncc/checkins';
import type { RedisClient } from '@ncc/service-kit';

/** A stream entry as Redis returns it: its id and its flat field/value list. */
export interface StreamEntry {
  id: string;
  fields: string[];
}

/**
 * Reads `ncc:checkins` for the live view with plain XREAD (no consumer group: the live view
 * acknowledges nothing and must never hold up the processor's trimming). Its connection is its own:
 * a connection blocked in XREAD BLOCK answers nothing else until the read returns.
 */
export class LiveStreamReader {
  constructor(private readonly redis: RedisClient) {}

  /**
   * The id of the newest entry ('0-0' for an empty or missing stream): what `$` would mean now, as a
   * concrete id, so that the reads after it miss nothing appended between two of them.
   */
  async lastId(): Promise<string> {
    const [newest] = await this.redis.xrevrange(CHECKIN_STREAM, '+', '-', 'COUNT', 1);
    return newest?.[0] ?? '0-0';
  }

  /**
   * Up to `count` entries after `afterId`, waiting up to `blockMs` for the first one (undefined: do
   * not wait); [] when none came.
   */
  async readAfter(afterId: string, count: number, blockMs: number | undefined): Promise<StreamEntry[]> {
    const reply =
      blockMs === undefined
        ? await this.redis.xread('COUNT', count, 'STREAMS', CHECKIN_STREAM, afterId)
        : await this.redis.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', CHECKIN_STREAM, afterId);
    return (reply ?? []).flatMap(([, entries]) => entries.map(([id, fields]) => ({ id, fields })));
  }
}
