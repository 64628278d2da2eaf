import { z } from 'zod';
import { env, processEnvSchema } from '@ncc/service-kit';

/** Where a service behind the gateway answers: an http:// origin, nothing after the port. */
const upstreamUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' && url.hostname !== '' && url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '';
    } catch {
      return false;
    }
  },
  { message: 'must be the http:// origin of the service, such as http://127.0.0.1:8083 (no path, query or credentials)' },
);

/**
 * Everything the gateway reads from the environment, parsed once at start-up. No Redis, no session
 * secret: it reads no session, it only passes requests (and their cookie) on.
 */
export const gatewayEnvSchema = processEnvSchema.safeExtend({
  /** The one origin for the browser: the page, the auth routes and the checkin API. */
  GATEWAY_PORT: env.port(8080),
  /** The auth service (its own port stays open for Postman and curl). */
  AUTH_URL: upstreamUrl.default('http://127.0.0.1:8083'),
  /** The checkin service: checkins, stats and the live stream. */
  CHECKIN_URL: upstreamUrl.default('http://127.0.0.1:8082'),
  /**
   * Loopback unless told otherwise, like the services under `pnpm start`: they run with the public
   * development secret and demo passwords there, and the gateway would otherwise be their way in from
   * the network.
   */
  HOST: z.string().min(1).default('127.0.0.1'),
});

export type GatewayConfig = z.infer<typeof gatewayEnvSchema>;
