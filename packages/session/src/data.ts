import { z } from 'zod';

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
  /** The stored value as a session; null when it is no (longer a) valid session. */
  parse(text: string): StoredSession | null;
  /** The same without the absolute-timeout check: a value's shape never changes, its age does (see `expired`). */
  decode(text: string): StoredSession | null;
  /** Whether a decoded session is past the absolute timeout now. */
  expired(session: StoredSession): boolean;
  stringify(session: object): string;
}

/** Where the serializer reports a stored value it ignores (a service's Logger, or a silent stand-in). */
export interface InvalidSessionReporter {
  warn(message: string, meta?: object): unknown;
}

/**
 * JSON, as redis-cli users expect — but a value that is not JSON, or not a session, means "no session"
 * (logged once as a warning) instead of turning every request with that cookie into a 500. Sessions
 * older than the absolute timeout are also treated as gone.
 */
export function createSerializer(logger: InvalidSessionReporter, absoluteTimeoutSeconds: number, now: () => number = Date.now): SessionSerializer {
  const decode = (text: string): StoredSession | null => {
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
    return parsed.data;
  };
  const expired = (session: StoredSession): boolean => session.createdAt !== undefined && now() - session.createdAt > absoluteTimeoutSeconds * 1000;
  return {
    stringify: (session) => JSON.stringify(session),
    decode,
    expired,
    parse: (text) => {
      const session = decode(text);
      return session === null || expired(session) ? null : session;
    },
  };
}
