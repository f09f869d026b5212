// The REST API as the console uses it: the caller's token, JSON in and out, problem documents
// turned into errors that keep their title and field errors. The console has no authority of
// its own: every call carries the token the user signed in with.

const PREFIX = '/api/v1/invite';
const KEY = 'invite-console-token';

/** The token of this tab, or null. */
export function token() {
  return sessionStorage.getItem(KEY);
}

/** Keeps `value` as this tab's token (null forgets it). */
export function setToken(value) {
  if (value) {
    sessionStorage.setItem(KEY, value);
  } else {
    sessionStorage.removeItem(KEY);
  }
}

/** A failed call: the problem document's title, detail and field errors. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `HTTP ${status}`;
    this.detail = problem.detail || '';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

/** Called when the server refuses the token (set by the app). */
export const hooks = { unauthorized: () => {} };

function url(path, query) {
  const u = new URL(PREFIX + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u.pathname + u.search;
}

/**
 * Calls the API. `options`: `query` (object), `json` (a body sent as JSON), `form` (a
 * FormData sent as multipart), `raw` (answer the Response itself, for downloads), `trying`
 * (a token being tried: a 401 does not sign the page out).
 */
export async function call(method, path, options = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  let response;
  try {
    response = await fetch(url(path, options.query), { method, headers, body, cache: 'no-store' });
  } catch (e) {
    throw new ApiProblem(0, { title: 'The service cannot be reached', detail: String(e.message || e) });
  }
  if (response.status === 401 && !options.trying) {
    hooks.unauthorized();
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = { title: `HTTP ${response.status}` };
    }
    throw new ApiProblem(response.status, problem);
  }
  if (options.raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, query) => call('GET', path, { query });
export const post = (path, json) => call('POST', path, json === undefined ? {} : { json });
