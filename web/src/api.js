// The public API of the gateway (docs/api.md), called with the signed-in key. Nothing else.

const KEY = 'lowart.key';

/** The key lives in sessionStorage only: never in a URL, a cookie or localStorage. */
export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message, code = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const unauthorized = new Set();

/** Called with the error whenever the gateway refuses the key (401). */
export function onUnauthorized(listener) {
  unauthorized.add(listener);
  return () => unauthorized.delete(listener);
}

/** A sentence for a person, never a blank page: what happened and what to do. */
export function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error?.message ?? error}`;
  const said = error.message ? ` The gateway said: “${error.message}”` : '';
  switch (error.status) {
    case 0:
      return `The gateway could not be reached. Check that it is running, then try again.`;
    case 401:
      return `Your API key was refused (401).${said} Sign in with a valid key.`;
    case 403:
      return `This key may not do that (403).${said}`;
    case 429:
      if (error.code === 'insufficient_quota') {
        return `Your token quota is used up (429).${said} Ask an admin to raise it.`;
      }
      return `Too many requests (429): try again${
        error.retryAfter ? ` in ${error.retryAfter} s` : ' shortly'
      }.${said}`;
    default:
      return `Request failed (${error.status}).${said}`;
  }
}

async function errorOf(response) {
  let message = response.statusText;
  let code = null;
  try {
    const body = await response.json();
    message = body?.error?.message ?? message;
    code = body?.error?.code ?? null;
  } catch {
    // not JSON: the status says enough
  }
  const error = new ApiError(response.status, message, code, response.headers.get('retry-after'));
  if (response.status === 401) unauthorized.forEach((listener) => listener(error));
  return error;
}

/** The raw response of a call, or an ApiError. */
export async function request(method, path, body, { signal, key = session.key() } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, '');
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** A call whose answer is JSON. */
export async function api(method, path, body, options) {
  const response = await request(method, path, body, options);
  return response.json();
}

/** The `data:` payloads of a Server-Sent Events response, up to `[DONE]`. */
export async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (!data) continue;
        if (data === '[DONE]') return;
        yield data;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export const enc = encodeURIComponent;
