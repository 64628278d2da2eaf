import { context, isSpanContextValid, propagation, type Span, type SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * The code's own spans and trace context, through @opentelemetry/api only: with tracing off (no SDK
 * started, see tracing.ts) every call here is the API's no-op and costs next to nothing.
 */
const tracer = trace.getTracer('ncc');

export { SpanKind } from '@opentelemetry/api';

/** trace_id / span_id of the active span, for log lines; undefined outside a sampled request or entry. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const ids = span.spanContext();
  return isSpanContextValid(ids) ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
}

/** The W3C traceparent of the active context (to carry it across Redis, in a stream entry), if there is one. */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier['traceparent'];
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Record<string, string | number | boolean>;
  /** Continue this W3C traceparent (e.g. the one a stream entry carries) instead of the active context. */
  traceparent?: string | undefined;
}

/** Runs `work` in a new active span: ended when it settles, an error recorded on it (and rethrown). */
export function inSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.traceparent === undefined ? context.active() : propagation.extract(context.active(), { traceparent: options.traceparent });
  const spanOptions = { ...(options.kind === undefined ? {} : { kind: options.kind }), ...(options.attributes ? { attributes: options.attributes } : {}) };
  return tracer.startActiveSpan(name, spanOptions, parent, async (span): Promise<T> => {
    try {
      return await work(span);
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}
