/* The pages' client of gridlink's API: one fetch wrapper for every call.
 *
 * - The session is the HttpOnly `gridlink_session` cookie set by POST /api/v1/auth/session; the page cannot
 *   read it, so the CSRF token the server answers (login, or GET /api/v1/auth/session on a later page load) is
 *   kept here and sent as `X-CSRF-Token` on every write.
 * - A page that was never logged in does not ask the server who it is (that would be a 401 in the browser's
 *   console on every anonymous load): a flag in localStorage says a session was opened in this browser.
 * - Errors: a problem+json reply becomes an ApiError whose message is readable (title, detail, the fields
 *   that failed, the allowed actions); a network failure is an ApiError with status 0.
 * - 401 on a call made while signed in: every form marked `data-keep` is saved in sessionStorage, the page is
 *   told (`onUnauthorized`) and shows the login box; after the next login the forms are filled back in. */

import { t } from './i18n.js';

const SESSION_FLAG = 'gridlink.session';
const KEEP_PREFIX = 'gridlink.keep.';
export const API_BASE = '/api/v1';

let csrf = null;
let account = null;
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message);
    this.status = status;
    this.problem = problem || {};
  }
}

function flagStore() {
  try { return window.localStorage; } catch (e) { return null; }
}

/** The signed-in account ({login, role, scope}) or null. */
export function currentAccount() { return account; }

/** Register what the page does when a call answers 401 (show the login box). */
export function onUnauthorized(fn) { unauthorized = fn; }

/** A readable sentence from a problem+json body. */
export function describeProblem(status, body) {
  if (!body || typeof body !== 'object') return `${t('requestFailed')} (${status})`;
  const parts = [body.title || t('requestFailed')];
  if (body.detail) parts.push(body.detail);
  if (Array.isArray(body.errors)) {
    for (const e of body.errors.slice(0, 5)) parts.push(`${(e.loc || []).join('.')}: ${e.msg || ''}`);
  }
  return `${parts.join(' — ')} (${status})`;
}

async function readBody(reply) {
  const type = reply.headers.get('content-type') || '';
  if (reply.status === 204) return null;
  if (type.includes('json')) {
    try { return await reply.json(); } catch (e) { return null; }
  }
  return reply.text();
}

/**
 * Call the API. `path` is absolute ('/api/v1/…', '/tiles/…') or relative to /api/v1.
 * options: method, json (a body sent as JSON), form (an object sent as a URL-encoded form), body (sent as
 * it is: a File or Blob), headers,
 * ifMatch (a revision: sent as If-Match "<rev>"), raw (answer the Response itself).
 * Returns {status, body, headers}; throws ApiError on a non-2xx reply or a network failure.
 */
export async function api(path, options = {}) {
  const url = path.startsWith('/') ? path : `${API_BASE}/${path}`;
  const method = (options.method || (options.json || options.form ? 'POST' : 'GET')).toUpperCase();
  const headers = new Headers(options.headers || {});
  headers.set('Accept', 'application/json, application/problem+json');
  let body;
  if (options.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = new URLSearchParams(options.form);
  } else if (options.body !== undefined) {
    body = options.body;  // sent as it is (a file: a survey upload); its Content-Type is in options.headers
  }
  if (options.ifMatch !== undefined && options.ifMatch !== null) headers.set('If-Match', `"${options.ifMatch}"`);
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers.set('X-CSRF-Token', csrf);
  let reply;
  try {
    reply = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: options.signal });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null, t('networkFailed'));
  }
  const data = await readBody(reply);
  if (reply.ok) return { status: reply.status, body: data, headers: reply.headers };
  const error = new ApiError(reply.status, data, describeProblem(reply.status, data));
  if (reply.status === 401 && account && !options.noRelogin) {
    keepForms();
    forget();
    unauthorized(error);
  }
  throw error;
}

function remember(reply) {
  account = { login: reply.login, role: reply.role, scope: reply.scope, scope_bounds: reply.scope_bounds || null };
  csrf = reply.csrf_token;
  const store = flagStore();
  if (store) store.setItem(SESSION_FLAG, '1');
  return account;
}

function forget() {
  account = null;
  csrf = null;
  const store = flagStore();
  if (store) store.removeItem(SESSION_FLAG);
}

/** The session opened earlier in this browser, if it is still valid; null without asking when none was. */
export async function resumeSession() {
  const store = flagStore();
  if (!store || !store.getItem(SESSION_FLAG)) return null;
  try {
    return remember((await api('auth/session', { noRelogin: true })).body);
  } catch (err) {
    if (err.status === 401) forget();
    return null;
  }
}

/** Log in (throws ApiError on refusal); returns the account and fills back forms kept by a 401. */
export async function login(username, password) {
  const reply = await api('auth/session', { form: { username, password }, noRelogin: true });
  return remember(reply.body);
}

/** Log out (the server revokes the session); the page forgets it even if the server is unreachable. */
export async function logout() {
  try { await api('auth/session', { method: 'DELETE', noRelogin: true }); } catch (e) { /* forgotten below */ }
  forget();
}

function keepKey(form) { return `${KEEP_PREFIX}${window.location.pathname}#${form.id}`; }

/** Save every `form[data-keep]` with an id into sessionStorage (passwords and files never). */
export function keepForms() {
  for (const form of document.querySelectorAll('form[data-keep][id]')) {
    const values = {};
    for (const field of form.elements) {
      if (!field.name || field.type === 'password' || field.type === 'file') continue;
      if (field.type === 'checkbox' || field.type === 'radio') values[field.name] = field.checked;
      else values[field.name] = field.value;
    }
    try { window.sessionStorage.setItem(keepKey(form), JSON.stringify(values)); } catch (e) { /* full */ }
  }
}

/** Fill back the forms kept before a login; returns how many were restored. */
export function restoreForms() {
  let restored = 0;
  for (const form of document.querySelectorAll('form[data-keep][id]')) {
    let values = null;
    try {
      values = JSON.parse(window.sessionStorage.getItem(keepKey(form)) || 'null');
      window.sessionStorage.removeItem(keepKey(form));
    } catch (e) { values = null; }
    if (!values) continue;
    for (const [name, value] of Object.entries(values)) {
      const field = form.elements.namedItem(name);
      if (!field || field instanceof RadioNodeList) continue;
      if (field.type === 'checkbox' || field.type === 'radio') field.checked = Boolean(value);
      else field.value = value;
    }
    form.dispatchEvent(new CustomEvent('gridlink:restored'));
    restored += 1;
  }
  return restored;
}
