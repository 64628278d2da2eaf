// What other workspace packages may use of the gateway (the process itself is main.ts): the tests
// build it in-process from its composition root and check the nginx gateway against its routes.
export { createGatewayApp, type GatewayParts, PUBLIC_DIR } from './app.js';
export { type GatewayConfig, gatewayEnvSchema } from './config.js';
export { API_PREFIX, AUTH_PATHS, LIVE_STREAM_PATH, PAGE_CSP, PAGE_HEADERS } from './routes.js';
