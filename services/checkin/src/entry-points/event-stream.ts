import type { Response } from 'express';

/**
 * The most a stream may hold unsent before its client counts as gone (a few thousand checkins): a
 * browser that stopped reading must not grow this process's memory without bound. Its connection is
 * cut; EventSource reconnects by itself and goes on from then.
 */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * A `text/event-stream` response (server-sent events). The headers go out with the first write —
 * whatever writes first, the route or the hub — and are flushed at once; nothing is written once the
 * response has ended or its client has gone (a write after the end would raise an error event).
 */
export class EventStream {
  constructor(
    private readonly res: Response,
    /** The `retry:` sent first: how long EventSource waits before it reconnects a dropped stream. */
    private readonly retryMs: number,
  ) {}

  open(): void {
    if (this.res.headersSent || this.res.destroyed) return;
    this.res.status(200);
    this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    // Never stored by a cache, and never buffered by nginx (it would hold the events back).
    this.res.setHeader('Cache-Control', 'no-store');
    this.res.setHeader('X-Accel-Buffering', 'no');
    this.res.flushHeaders();
    this.write(`retry: ${this.retryMs}\n\n`);
  }

  /** `data` is one line (JSON.stringify writes no raw newline). */
  event(name: string, data: string, id?: string): void {
    this.write(`event: ${name}\n${id === undefined ? '' : `id: ${id}\n`}data: ${data}\n\n`);
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  end(): void {
    this.open();
    if (!this.res.writableEnded) this.res.end();
  }

  private write(chunk: string): void {
    this.open();
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.write(chunk);
    if (this.res.writableLength > MAX_BUFFERED_BYTES) this.res.destroy();
  }
}
