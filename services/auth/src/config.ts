import type { z } from 'zod';
import { baseEnvSchema, env } from '@ncc/service-kit';
import { sessionEnvShape } from '@ncc/session';

/** Everything the auth service reads from the environment, parsed once at start-up. */
export const authEnvSchema = baseEnvSchema.extend({
  ...sessionEnvShape,
  AUTH_PORT: env.port(8083),
  /** bcrypt cost for new hashes and for the dummy compare; below 10 is refused. */
  BCRYPT_ROUNDS: env.int(10, 10, 15),
});

export type AuthConfig = z.infer<typeof authEnvSchema>;
