// The kit every ncc service is built from: config, logging, Redis, HTTP frame, errors, process lifecycle.
export { createServiceFrame, type ServiceApp, type ServiceFrameOptions } from './app.js';
export {
  type BaseConfig,
  baseEnvSchema,
  checkListenAddress,
  isLoopbackHost,
  loadConfig,
  type ProcessConfig,
  processEnvSchema,
  signsWithDevelopmentSecret,
} from './config.js';
export { currentClientRequestId, currentRequestId } from './context.js';
export { type CrossSiteOptions, crossSiteEnvShape, crossSiteGuard } from './cross-site.js';
export { AppError, type AppErrorOptions, type ErrorBody, errorHandler, httpErrors, notFoundHandler, sendError } from './errors.js';
export { createBaseApp, DEFAULT_BODY_LIMIT, healthRoutes, jsonBody, optionalJsonBody, requestId, type RunningServer, startServer } from './http.js';
export { createLogger, type Logger } from './logger.js';
export { metricsPortEnv, ServiceMetrics, startMetricsServer, UNMATCHED_ROUTE } from './metrics.js';
export { activeTraceIds, currentTraceparent, inSpan, SpanKind, type SpanOptions } from './trace-context.js';
export { ConfigError, type CrossKeyRule, env, withRules } from './env.js';
export {
  closeRedis,
  createRedisClient,
  DEFAULT_REDIS_URL,
  describeRedisTarget,
  type HostPort,
  isRedisUnavailable,
  parseHostPort,
  reconnectDelay,
  redactUrl,
  type RedisClient,
  redisAnswers,
  redisMode,
  type RedisMode,
  redisUrlSchema,
  waitForRedis,
} from './redis.js';
export {
  CRASH_EXIT_CODE,
  CRASH_EXIT_MARGIN_MS,
  createServiceLogger,
  runService,
  type ServiceDefinition,
  type ServiceParts,
  type ServiceWithoutRedisDefinition,
} from './service.js';
export { parseBody } from './validation.js';
