import { runService } from '@ncc/service-kit';
import { sessionSettings } from '@ncc/session';
import { createAuthApp } from './app.js';
import { authEnvSchema } from './config.js';

await runService({
  name: 'auth',
  schema: authEnvSchema,
  port: (config) => config.AUTH_PORT,
  checkConfig: (config) => {
    sessionSettings(config);
  },
  createApp: (parts) => createAuthApp(parts),
  listeningMessage: (port) => `Authentication service listening on port ${port}.`,
});
