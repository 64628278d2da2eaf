/**
 * OpenTelemetry tracing: the SDK with the http, Express and ioredis instrumentations, configured by the
 * standard environment variables (OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL
 * http/protobuf (default) or http/json, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER(_ARG), OTEL_LOG_LEVEL, …).
 *
 * Off unless an endpoint is set: then nothing of the SDK is even loaded, and the code's own spans
 * (bcrypt, the processor's entries) go to @opentelemetry/api's no-op tracer.
 *
 * A service's main.ts imports only this module, awaits startTracing(), and then imports the rest
 * dynamically: the services are ES modules, and an ES module can be instrumented only if it is loaded
 * after the import-in-the-middle loader hook is registered (OpenTelemetry's ESM support). The hook
 * wraps exactly the modules the instrumentations asked for (createAddHookMessageChannel), nothing else.
 */
import { register } from 'node:module';

interface Sdk {
  shutdown(): Promise<void>;
}

let sdk: Sdk | undefined;

/** Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled). */
export function tracingRequested(environment: NodeJS.ProcessEnv = process.env): boolean {
  const endpoint = environment['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || environment['OTEL_EXPORTER_OTLP_ENDPOINT'];
  return Boolean(endpoint) && environment['OTEL_SDK_DISABLED'] !== 'true' && environment['OTEL_TRACES_EXPORTER'] !== 'none';
}

/** Paths that are probes, not traffic: no spans for them. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Starts the SDK when tracingRequested(); call it before the service's other modules are imported. */
export async function startTracing(serviceName: string): Promise<void> {
  if (sdk || !tracingRequested()) return;
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const [{ NodeSDK }, { HttpInstrumentation }, { ExpressInstrumentation, ExpressLayerType }, { IORedisInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-ioredis'),
  ]);
  const started = new NodeSDK({
    serviceName: process.env['OTEL_SERVICE_NAME'] || serviceName,
    // Traces only. Unset, OTEL_METRICS_EXPORTER and OTEL_LOGS_EXPORTER mean "otlp" to NodeSDK: it would
    // also post metrics to the endpoint once a minute (and the http instrumentation record its own
    // request histogram). Metrics are prom-client's (GET /metrics), logs go to stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
      }),
      // Route handlers only (they carry http.route): every middleware and router would be a span each.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER] }),
      new IORedisInstrumentation({
        // Only commands made on behalf of a request or an entry: the processor's polling is no trace.
        requireParentSpan: true,
        // The command name only: arguments hold session ids, emails and user ids.
        dbStatementSerializer: (command) => command,
      }),
    ],
  });
  started.start();
  sdk = started;
  await waitForAllMessagesAcknowledged();
}

/** Flushes the spans not yet exported and stops the SDK; gives up after `timeoutMs`. */
export async function stopTracing(timeoutMs = 2000): Promise<void> {
  const running = sdk;
  if (!running) return;
  sdk = undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    running.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
