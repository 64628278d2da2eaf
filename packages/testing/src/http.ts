/** Minimal cookie handling over fetch: enough to act like Postman's cookie jar in tests. */
export function setCookies(res: Response): string[] {
  return res.headers.getSetCookie();
}

/** The `name=value` pair of a Set-Cookie for `name`, or undefined. */
export function cookiePair(res: Response, name: string): string | undefined {
  const header = setCookies(res).find((c) => c.startsWith(`${name}=`));
  return header?.split(';')[0];
}

/** The session id inside a signed `checkinapp=s%3A<id>.<sig>` pair. */
export function sessionIdOf(pair: string): string {
  const value = decodeURIComponent(pair.slice(pair.indexOf('=') + 1));
  if (!value.startsWith('s:')) throw new Error(`not a signed session cookie: ${pair}`);
  return value.slice(2, value.lastIndexOf('.'));
}

/** The Redis key of the session a signed session cookie names: `ncc:session:<id>`. */
export function sessionKeyOf(pair: string): string {
  return `ncc:session:${sessionIdOf(pair)}`;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
