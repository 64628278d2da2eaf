export * from './config.js';
export * from './context.js';
export * from './errors.js';
export * from './http.js';
export * from './logger.js';
export * from './redis.js';
export * from './service.js';
export * from './validation.js';
