import { checkListenAddress, runService } from '@ncc/service-kit';
import { checkSessionConfig } from '@ncc/session';
import { createAuthApp, createPasswordHasher } from './app.js';
import { authEnvSchema } from './config.js';

await runService({
  name: 'auth',
  schema: authEnvSchema,
  port: (config) => config.AUTH_PORT,
  metricsPort: (config) => config.METRICS_PORT,
  checkConfig: (config, logger) => {
    checkSessionConfig(config, logger);
    checkListenAddress(config, logger);
  },
  // bcrypt runs on a worker-thread pool; the app closes it on shutdown, after in-flight logins finished.
  createApp: (parts) => createAuthApp({ ...parts, hasher: createPasswordHasher(parts.config) }),
  listeningMessage: (port) => `Authentication service listening on port ${port}.`,
});
