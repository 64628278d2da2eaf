export * from './http.js';
export * from './logs.js';
export * from './metrics.js';
export * from './redis-server.js';
export * from './wait.js';
