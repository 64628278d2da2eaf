// The session contract every ncc service shares: its names, settings and the ways to use it.
export {
  COOKIE_NAME,
  checkSessionConfig,
  cookieOptions,
  DEFAULT_ANONYMOUS_TTL_S,
  DEFAULT_TTL_S,
  DEVELOPMENT_SECRET,
  idleTtlSeconds,
  SESSION_PREFIX,
  type SessionEnv,
  sessionEnvShape,
  sessionKey,
  type SessionSettings,
  sessionSettings,
  USER_SESSIONS_PREFIX,
  userSessionsKey,
} from './contract.js';
export { createSerializer, type SessionSerializer, type StoredSession } from './data.js';
export { createSessionMiddleware, type SessionDeps } from './middleware.js';
export { SessionReader } from './reader.js';
export { clearSessionCookie, currentUser, type RequestSession, requestSession, requireSessionUser, requireUser, type SessionUser } from './request-session.js';
export { requireSendableCookie } from './transport.js';
export { isSessionHandle, sessionHandle, truncateUserAgent, type UserSessionEntry, UserSessionIndex } from './user-sessions.js';
