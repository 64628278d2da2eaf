// Tracing first (when OTEL_EXPORTER_OTLP_ENDPOINT is set): an ES module is instrumented only if it is
// loaded after OpenTelemetry's loader hook, so the service itself is imported only once it is in place.
import { startTracing } from '@ncc/service-kit/tracing';

await startTracing('checkin');
await import('./service.js');
