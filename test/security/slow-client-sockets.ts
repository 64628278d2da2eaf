/**
 * Raw-socket clients that are slow on purpose, for the slow-client tests (in-process and the real
 * process), and the timeouts they run against.
 */
import net from 'node:net';

export const REQUEST_MS = 2500;
export const HEADERS_MS = 1000;
export const KEEP_ALIVE_MS = 1500;
/** How late a cut may come: the check interval (here 250 ms) plus scheduling on a busy machine. */
export const SLACK_MS = 1500;
/**
 * Node 20 closes an idle keep-alive socket a fixed second after the `Keep-Alive: timeout=` it
 * advertises (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER in lib/_http_server.js), so a client that honours
 * the advertised value never races the close.
 */
export const NODE_KEEP_ALIVE_BUFFER_MS = 1000;
export const TIMEOUTS = {
  HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
  HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
};

export interface Cut {
  /** From the connection's first byte (or from `startAt`) to the server closing it. */
  ms: number;
  /** Everything the server sent. */
  received: string;
}

/**
 * Connect, run `client` (which writes on its own schedule), and resolve when the server ends the
 * connection. `client` may call `mark()` to restart the clock (e.g. when a response has arrived).
 * Fails if the server has not closed it within `giveUpMs`.
 */
export function untilServerCloses(
  port: number,
  client: (socket: net.Socket, mark: () => void, received: () => string) => (() => void) | void,
  giveUpMs = 20_000,
): Promise<Cut> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    let start = 0;
    let stop: (() => void) | void;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${giveUpMs} ms; received: ${JSON.stringify(received)}`));
    }, giveUpMs);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    // The writes the client keeps making may hit a closed socket; that is the point.
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      start = performance.now();
      stop = client(
        socket,
        () => (start = performance.now()),
        () => received,
      );
    });
    socket.once('close', () => {
      clearTimeout(giveUp);
      stop?.();
      resolve({ ms: performance.now() - start, received });
    });
  });
}

/** Write `next()` every `everyMs` until the socket closes; returns the stop function. */
export function trickle(socket: net.Socket, everyMs: number, next: (n: number) => string): () => void {
  let n = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(next(n++));
  }, everyMs);
  return () => clearInterval(timer);
}

export const LOGIN_HEAD = 'POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';

/** A slow body: the login headers at once, then a one-byte chunk (JSON whitespace) every 500 ms, forever. */
export const slowBody = (socket: net.Socket): (() => void) => {
  socket.write(LOGIN_HEAD);
  return trickle(socket, 500, () => '1\r\n \r\n');
};

/** Slow headers: the request line, then one more header line every 500 ms, never the blank line. */
export const slowHeaders = (socket: net.Socket): (() => void) => {
  socket.write('POST /login HTTP/1.1\r\n');
  return trickle(socket, 500, (n) => `X-Slow-${n}: ${n}\r\n`);
};

/** One complete GET /healthz on a keep-alive connection, then silence; the clock starts at the response. */
export const idleAfterOneRequest = (socket: net.Socket, mark: () => void, received: () => string): (() => void) => {
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const onData = (): void => {
    if (received().includes('{"status":"ok"}')) {
      mark();
      socket.off('data', onData);
    }
  };
  socket.on('data', onData);
  return () => socket.off('data', onData);
};
