import { z } from 'zod';
import type { Logger } from '@ncc/service-kit';

/** What ncc keeps in a session besides express-session's `cookie`: declared once, here. */
const sessionFieldsSchema = z.object({
  /** Set at login; absent on an anonymous (visit-counter) session. */
  userId: z.number().int().positive(),
  email: z.string(),
  /** The email again, under the name the original course's receiver checks (`req.session.user`). */
  user: z.string(),
  /** Epoch ms when the session was created (login time for a user session). */
  createdAt: z.number(),
  /** The login's User-Agent, truncated; shown in the session list. */
  userAgent: z.string(),
});

type SessionFields = z.infer<typeof sessionFieldsSchema>;

declare module 'express-session' {
  // express-session's own typing of req.session, extended with exactly the fields above.
  interface SessionData extends SessionFields {}
}

/** What a stored session must look like; anything else in Redis is treated as no session. */
export const storedSessionSchema = sessionFieldsSchema
  .partial()
  .extend({ cookie: z.object({ originalMaxAge: z.number().nullable().optional() }).loose() })
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
