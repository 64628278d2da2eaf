import { createHmac, randomBytes } from 'node:crypto';
import { currentClientRequestId, currentRequestId, type Logger } from '@ncc/service-kit';

export type AuditEvent = 'login.succeeded' | 'login.failed' | 'login.rate_limited' | 'logout' | 'logout_all' | 'session.revoked' | 'session.evicted';

export interface AuditFields {
  userId?: number | undefined;
  email?: string | undefined;
  ip?: string | undefined;
  /** Raw session id: hashed here, never written. */
  sid?: string | undefined;
  [extra: string]: unknown;
}

/**
 * Security events, one log entry each, with a stable shape for a SIEM: `audit: true`, `event`,
 * `requestId` (ours, never the client's), `clientRequestId` (the client's X-Request-Id, when it sent a
 * well-formed one), `userId` or `email`, `ip`, `sessionHash`. The session id is a bearer credential, so
 * only a salted HMAC of it is logged: entries about the same session correlate, but the log cannot be
 * used to hijack it. With AUDIT_HASH_SALT unset the salt is random per process (hashes then only
 * correlate within one instance); set it to correlate across instances.
 */
export class AuditLog {
  private readonly salt: Buffer;

  constructor(
    private readonly logger: Logger,
    salt?: string,
    /** Told of every event after it is logged (the business metrics count them). */
    private readonly observe?: (event: AuditEvent, fields: AuditFields) => void,
  ) {
    this.salt = salt ? Buffer.from(salt, 'utf8') : randomBytes(32);
  }

  sessionHash(sid: string): string {
    return createHmac('sha256', this.salt).update(sid).digest('hex').slice(0, 24);
  }

  /** `message` defaults to `audit <event>`; login and logout keep the lines operators know from the original demo. */
  record(event: AuditEvent, { sid, ...fields }: AuditFields, message = `audit ${event}`): void {
    const clientRequestId = currentClientRequestId();
    this.logger.info(message, {
      audit: true,
      event,
      requestId: currentRequestId(),
      ...(clientRequestId !== undefined ? { clientRequestId } : {}),
      ...fields,
      ...(sid !== undefined ? { sessionHash: this.sessionHash(sid) } : {}),
    });
    this.observe?.(event, fields);
  }
}
