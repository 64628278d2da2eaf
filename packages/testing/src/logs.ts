import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@ncc/service-kit';

export interface CapturedLogs {
  logger: Logger;
  /** Every entry written so far, as parsed JSON objects. */
  entries(): Record<string, unknown>[];
  /** The raw text of everything logged (to assert a secret appears nowhere). */
  text(): string;
  find(message: string | RegExp): Record<string, unknown>[];
}

/** A real winston logger writing JSON lines into memory, for tests that assert what was logged. */
export function captureLogs(service = 'test', level = 'debug'): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = createLogger({ service, level, json: true, stream });
  // Keep test output quiet: only the capture transport.
  for (const transport of logger.transports.filter((t) => t.constructor.name === 'Console')) logger.remove(transport);
  const entries = (): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    logger,
    entries,
    text: () => lines.join('\n'),
    find: (message) => entries().filter((e) => (typeof message === 'string' ? e['message'] === message : message.test(String(e['message'])))),
  };
}
