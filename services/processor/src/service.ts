import { runService } from '@ncc/service-kit';
import { createProcessorApp } from './app.js';
import { processorEnvSchema } from './config.js';

// A programmer error inside the processing loop rejects the app's `done` promise; nobody handles it,
// so it reaches runService as an unhandled rejection: logged with its stack, exit 1, restarted.
await runService({
  name: 'processor',
  schema: processorEnvSchema,
  port: (config) => config.PROCESSOR_PORT,
  metricsPort: (config) => config.METRICS_PORT,
  createApp: (parts) => createProcessorApp(parts),
  listeningMessage: (port) => `Checkin processor listening on port ${port} (health and readiness only).`,
});
