import { checkListenAddress, runService } from '@ncc/service-kit';
import { checkSessionConfig } from '@ncc/session';
import { createCheckinApp } from './app.js';
import { checkinEnvSchema } from './config.js';

// `--no-auth` is the command-line twin of CHECKIN_AUTH=off (the original took an `auth` argument).
if (process.argv.includes('--no-auth')) process.env['CHECKIN_AUTH'] = 'off';

await runService({
  name: 'checkin',
  schema: checkinEnvSchema,
  port: (config) => config.CHECKIN_PORT,
  metricsPort: (config) => config.METRICS_PORT,
  checkConfig: (config, logger) => {
    checkSessionConfig(config, logger);
    checkListenAddress(config, logger);
    if (config.CHECKIN_AUTH === 'off') {
      if (config.NODE_ENV === 'production') {
        throw new Error('CHECKIN_AUTH=off (or --no-auth) is refused when NODE_ENV=production: anyone could check in as anyone.');
      }
      logger.warn('Authentication DISABLED (CHECKIN_AUTH=off): any request can check in as any user. For demos only.');
    } else {
      logger.info('Authentication enabled, checkins require a valid user session.');
    }
  },
  createApp: (parts) => createCheckinApp(parts),
  listeningMessage: (port) => `Checkin receiver listening on port ${port}.`,
});
