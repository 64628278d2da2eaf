import { z } from 'zod';
import type { Logger } from '@ncc/service-kit';

declare module 'express-session' {
  interface SessionData {
    /** Set at login; absent on an anonymous (visit-counter) session. */
    userId: number;
    email: string;
    /** The email again, under the name the original course's receiver checks (`req.session.user`). */
    user: string;
    /** Epoch ms when the session was created (login time for a user session). */
    createdAt: number;
    /** The login's User-Agent, truncated; shown in the session list. */
    userAgent: string;
  }
}

/** What a stored session must look like; anything else in Redis is treated as no session. */
export const storedSessionSchema = z
  .object({
    cookie: z.object({ originalMaxAge: z.number().nullable().optional() }).loose(),
    userId: z.number().int().positive().optional(),
    email: z.string().optional(),
    createdAt: z.number().optional(),
  })
  .loose();

export type StoredSession = z.infer<typeof storedSessionSchema>;

export interface SessionSerializer {
  parse(text: string): StoredSession | null;
  stringify(session: object): string;
}

/**
 * JSON, as redis-cli users expect — but a value that is not JSON, or not a session, means "no session"
 * (logged once as a warning) instead of turning every request with that cookie into a 500. Sessions
 * older than the absolute timeout are also treated as gone.
 */
export function createSerializer(logger: Logger, absoluteTimeoutSeconds: number, now: () => number = Date.now): SessionSerializer {
  return {
    stringify: (session) => JSON.stringify(session),
    parse: (text) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        logger.warn('Ignoring a stored session that is not valid JSON.');
        return null;
      }
      const parsed = storedSessionSchema.safeParse(value);
      if (!parsed.success) {
        logger.warn('Ignoring a stored session with an unexpected shape.', { fields: parsed.error.issues.map((i) => i.path.join('.')) });
        return null;
      }
      const created = parsed.data.createdAt;
      if (created !== undefined && now() - created > absoluteTimeoutSeconds * 1000) return null;
      return parsed.data;
    },
  };
}
