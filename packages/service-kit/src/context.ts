import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  /** Ours: generated per request, never taken from the client. */
  requestId: string;
  /** The client's own X-Request-Id, when it sent a well-formed one (see `requestId` in http.ts). */
  clientRequestId?: string;
}

/** Per-request context; the logger merges it into every entry written while a request runs. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}

export function currentClientRequestId(): string | undefined {
  return requestContext.getStore()?.clientRequestId;
}
