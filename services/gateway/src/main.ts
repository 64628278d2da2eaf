import { runService } from '@ncc/service-kit';
import { createGatewayApp } from './app.js';
import { gatewayEnvSchema } from './config.js';

// No Redis (`redis: false`): the gateway reads no session and keeps no state, so it starts, serves the
// page and answers 502 for a service that is down, whatever Redis does.
await runService({
  name: 'gateway',
  schema: gatewayEnvSchema,
  redis: false,
  port: (config) => config.GATEWAY_PORT,
  // Nothing but the page and the two APIs is published here: the services serve their own metrics.
  metricsPort: () => 'off',
  createApp: ({ config, logger }) => createGatewayApp({ config, logger }),
  listeningMessage: (port) => `Gateway listening on port ${port}.`,
});
