// The REST client: credentials, and what a refusal means for the page.
//
// The token lives in sessionStorage (this tab only, gone when it closes), never in
// localStorage or a cookie. A 401 on any call means the credentials are gone or wrong:
// the page forgets them and goes back to sign-in.

const TOKEN_KEY = "arbotd.token";
const SCOPE_KEY = "arbotd.scope";
const USER_KEY = "arbotd.user";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get scope() { return sessionStorage.getItem(SCOPE_KEY) || "trading"; },
  get user() { return sessionStorage.getItem(USER_KEY) || ""; },
  save(token, scope, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(SCOPE_KEY, scope);
    sessionStorage.setItem(USER_KEY, user);
  },
  clear() {
    for (const key of [TOKEN_KEY, SCOPE_KEY, USER_KEY]) sessionStorage.removeItem(key);
  },
};

let onUnauthorized = () => {};

export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: a proxy's page */ }
  const error = body && body.error;
  if (error) return new ApiError(response.status, error.code, error.message, error.details);
  return new ApiError(response.status, "HTTP_" + response.status,
                      `${response.status} ${response.statusText}`);
}

// A call of the API: the parsed JSON answer, or an ApiError (status 0: no answer).
export async function call(method, path, body = undefined, { timeout = 10000 } = {}) {
  const headers = { Accept: "application/json" };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  init.signal = controller.signal;
  let response;
  try {
    response = await fetch("/api/v1" + path, init);
  } catch (err) {
    throw new ApiError(0, "UNREACHABLE", "The daemon did not answer: " + err.message);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    // With a token, a 401 ends the session; without one it is the sign-in's own answer.
    if (response.status === 401 && path !== "/auth/login") onUnauthorized(error);
    throw error;
  }
  return response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

// Whether the server wants credentials: /status answers 401 without them when it does.
export async function authRequired() {
  const response = await fetch("/api/v1/status", { cache: "no-store" });
  return response.status === 401;
}

export async function login(username, password) {
  const answer = await call("POST", "/auth/login", { username, password });
  session.save(answer.access_token, answer.scope, username);
  return answer;
}
