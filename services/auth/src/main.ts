import { checkListenAddress, runService, ServiceUnavailableError } from '@ncc/service-kit';
import { checkSessionConfig } from '@ncc/session';
import { createAuthApp } from './app.js';
import { authEnvSchema } from './config.js';
import { BcryptHasher } from './domain/passwords.js';

// bcrypt runs on a worker-thread pool; it is closed on shutdown, after in-flight logins finished.
let hasher: BcryptHasher | undefined;

await runService({
  name: 'auth',
  schema: authEnvSchema,
  port: (config) => config.AUTH_PORT,
  checkConfig: (config, logger) => {
    checkSessionConfig(config, logger);
    checkListenAddress(config, logger);
  },
  createApp: (parts) => {
    hasher = new BcryptHasher(parts.config.BCRYPT_ROUNDS, {
      // A full hashing queue is overload, not a bug: 503 with Retry-After, like Redis being away.
      overloaded: () => new ServiceUnavailableError('Too many logins in progress. Please retry shortly.'),
    });
    return createAuthApp({ ...parts, hasher });
  },
  listeningMessage: (port) => `Authentication service listening on port ${port}.`,
  onClose: async () => {
    await hasher?.close();
  },
});
