/* The report page's outgoing queue: every report is first written to IndexedDB (with its photos as Blobs), then
 * sent; it leaves the queue only when the server has answered with the case. So a report survives a reload, a
 * closed tab or a phone without signal, and is retried — always with the Idempotency-Key it got when it was
 * filed, so a retry whose first attempt did reach the server (the reply lost on the way back) is answered with
 * that first case (200 Idempotent-Replayed), never a second one.
 *
 * Sending: POST /api/v1/cases/with-photos (multipart: `report` JSON + `photo` files) with the session cookie and
 * its CSRF token. A network failure, 408, 429 and 5xx keep the item and retry it later (2 s, 5 s, 15 s, 30 s …,
 * and at once when the browser says it is online again); 401 keeps it until the user logs in again; any other
 * refusal (403, 409, 413, 415, 422 …) marks it failed with the server's reason, kept until the user deletes it. */

const DB_NAME = 'gridlink-report';
const STORE = 'outbox';
const RETRY_S = [2, 5, 15, 30, 60];
const RETRYABLE = (status) => status === 0 || status === 408 || status === 429 || status >= 500;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'key' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** A new idempotency key: a random UUID (printable ASCII, as the server requires). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Every queued item, oldest first: {key, report, photos: [{name, blob}], created, attempts, state, error}. */
export async function items() {
  const all = await run('readonly', (store) => store.getAll());
  return (all || []).sort((a, b) => a.created - b.created);
}

/** Put a report in the queue (state `waiting`); returns the item. */
export async function enqueue(report, photos) {
  const item = { key: newKey(), report, photos, created: Date.now(), attempts: 0, state: 'waiting', error: null };
  await run('readwrite', (store) => store.put(item));
  return item;
}

async function save(item) { await run('readwrite', (store) => store.put(item)); }

/** Remove an item (sent, or deleted by the user). */
export async function remove(key) { await run('readwrite', (store) => store.delete(key)); }

let csrf = null;

async function csrfToken(refresh = false) {
  if (csrf && !refresh) return csrf;
  const reply = await fetch('/api/v1/auth/session', { credentials: 'same-origin',
    headers: { Accept: 'application/json' } });
  if (!reply.ok) {
    const error = new Error('no session');
    error.status = reply.status;
    throw error;
  }
  csrf = (await reply.json()).csrf_token;
  return csrf;
}

/** Forget the CSRF token (after a logout or a new login). */
export function resetSession() { csrf = null; }

/** POST a multipart form with the session cookie and its CSRF token → {status, body}; throws when the network
 * fails (or, with status 401, when there is no session). */
export async function postForm(path, form, headers = {}) {
  const reply = await fetch(path, {
    method: 'POST', body: form, credentials: 'same-origin',
    headers: { ...headers, 'X-CSRF-Token': await csrfToken(), Accept: 'application/json' },
  });
  let body = null;
  try { body = await reply.json(); } catch (e) { body = null; }
  return { status: reply.status, body };
}

function post(item) {
  const form = new FormData();
  form.append('report', JSON.stringify(item.report));
  for (const photo of item.photos) form.append('photo', photo.blob, photo.name);
  return postForm('/api/v1/cases/with-photos', form, { 'Idempotency-Key': item.key });
}

async function attempt(item) {
  try {
    return await post(item);
  } catch (err) {
    return { status: err && err.status ? err.status : 0, body: null };  // no network, or no session yet
  }
}

/**
 * The sender: `flush()` sends what is waiting, one at a time, oldest first; `onChange(items)` after every change,
 * `onSent(item, caseReply)` for each case the server confirmed, `onUnauthorized()` when the session is gone.
 */
export class Sender {
  constructor({ onChange = () => {}, onSent = () => {}, onUnauthorized = () => {} } = {}) {
    Object.assign(this, { onChange, onSent, onUnauthorized });
    this.running = null;
    this.timer = null;
    this.failures = 0;
    window.addEventListener('online', () => this.flush());
  }

  /** Put a report (and its photos: [{name, blob}]) in the queue; it is sent by the next flush(). */
  async queue(report, photos) {
    const item = await enqueue(report, photos);
    this.onChange(await items());
    return item;
  }

  /** Send every waiting item; resolves when the queue has been gone through once. */
  flush() {
    if (!this.running) this.running = this.drain().finally(() => { this.running = null; });
    return this.running;
  }

  async drain() {
    clearTimeout(this.timer);
    for (const item of await items()) {
      if (item.state === 'failed') continue;
      item.state = 'sending';
      this.onChange(await items().then((all) => all.map((i) => (i.key === item.key ? item : i))));
      const { status, body } = await attempt(item);
      item.attempts += 1;
      if (status === 200 || status === 201) {
        await remove(item.key);
        this.failures = 0;
        this.onSent(item, body);
      } else if (status === 401) {
        item.state = 'waiting';
        await save(item);
        this.onUnauthorized();
        break;
      } else if (status === 403 && body && /CSRF/i.test(body.detail || '')) {
        item.state = 'waiting';
        await save(item);
        resetSession();
        this.later();
        break;
      } else if (RETRYABLE(status)) {
        item.state = 'waiting';
        await save(item);
        this.later();
        break;  // the network is down or the server busy: the rest waits with it, in order
      } else {
        item.state = 'failed';
        item.error = (body && (body.detail || body.title)) || String(status);
        await save(item);
      }
    }
    this.onChange(await items());
  }

  later() {
    const wait = RETRY_S[Math.min(this.failures, RETRY_S.length - 1)];
    this.failures += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), wait * 1000);
  }
}
