/* The console's case list (with filters), the caller's inbox, and the live feed that keeps both current.
 *
 * Every filter is applied by the server (GET /api/v1/cases: state, category code prefix, area code of any level,
 * source, grade, overdue): one request per page. The category grades (GET /api/v1/categories, read once, in
 * parallel with the first page) mark the rows.
 *
 * Live: one EventSource on /api/v1/events/stream (the session cookie; the browser resumes with Last-Event-ID
 * by itself). Each event refreshes the list, the inbox and the case tiles (debounced) and, for a new A-grade
 * case, shows an alert in a polite live region. */

import { api } from '/static/common/api.js';
import { formatTime, t } from '/static/common/i18n.js';
import { el } from './dom.js';

const PAGE = 100;
const CLOSED = new Set(['closed', 'voided']);

const grades = new Map();  // category code → grade, from /categories
let categoriesLoading = null;

/** Load the category grades once (GET /api/v1/categories); resolves true when they are known. */
export function loadCategories() {
  categoriesLoading ||= api('categories').then((reply) => {
    const nodes = Array.isArray(reply.body) ? reply.body : (reply.body.categories || reply.body.nodes || []);
    for (const node of nodes) if (node.grade) grades.set(node.code, node.grade);
    return grades.size > 0;
  }).catch(() => { categoriesLoading = null; return false; });
  return categoriesLoading;
}

export function gradeOf(category) { return grades.get(category) || null; }

/** Whether a case is past its deadline (open cases only). */
export function isOverdue(c, now = Date.now()) {
  return !CLOSED.has(c.state) && Boolean(c.deadline) && new Date(c.deadline).getTime() < now;
}

/** "2 h 05 min left" / "overdue 3 h" on the wall clock to the deadline (the server computed it on the
 * working calendar). */
export function countdown(deadline, now = Date.now()) {
  if (!deadline) return '';
  const ms = new Date(deadline).getTime() - now;
  const minutes = Math.round(Math.abs(ms) / 60000);
  const text = minutes >= 1440 ? t('days', { n: Math.floor(minutes / 1440), h: Math.floor((minutes % 1440) / 60) })
    : t('hours', { h: Math.floor(minutes / 60), m: String(minutes % 60).padStart(2, '0') });
  return ms < 0 ? t('overdueBy', { d: text }) : t('left', { d: text });
}

/** What is left of a time limit as the server counted it (`workflow.time_left`): working time on the
 * working calendar ("2 h 05 min of working time left"), or the clock countdown to `deadline`. */
export function timeLeft(seconds, counted, deadline) {
  if (seconds === null || seconds === undefined || counted !== 'working') return countdown(deadline);
  const minutes = Math.round(Math.abs(seconds) / 60);
  const text = t('hours', { h: Math.floor(minutes / 60), m: String(minutes % 60).padStart(2, '0') });
  return `${seconds < 0 ? t('overdueBy', { d: text }) : t('left', { d: text })}${t('workingTime')}`;
}

function readFilter(form) {
  const data = new FormData(form);
  return { state: data.get('state') || '', grade: data.get('grade') || '', source: data.get('source') || '',
    category: (data.get('category') || '').trim(), area: (data.get('area') || '').trim(),
    overdue: data.get('overdue') === 'on' };
}

/** One row of a list: number, category and grade, state, grid, reported time, deadline; overdue marked. */
export function caseRow(c, onOpen, extra) {
  const now = Date.now();
  const li = el('li', 'cl-case');
  li.dataset.caseId = c.id;
  li.dataset.state = c.state;
  const open = el('button', 'cl-case-open');
  open.type = 'button';
  open.addEventListener('click', () => onOpen(c.id));
  const grade = gradeOf(c.category);
  const head = el('span', 'cl-case-head');
  head.append(el('strong', null, c.case_no), el('span', `cl-state cl-state-${c.state}`, t('state_' + c.state)));
  if (grade) head.append(el('span', `cl-grade cl-grade-${grade}`, grade));
  if (isOverdue(c, now)) {
    li.classList.add('cl-overdue');
    head.append(el('span', 'cl-overdue-mark', t('overdue')));
  }
  const grid = c.grid ? (c.grid.name || c.grid.code) : '';
  open.append(head, el('span', 'cl-case-line', `${c.category} · ${grid} · ${t('source_' + c.source)}`),
    el('span', 'cl-case-line', `${formatTime(c.reported_at)}${c.deadline && !CLOSED.has(c.state) ? ' · ' + countdown(c.deadline, now) : ''}`));
  if (extra) open.append(el('span', 'cl-case-line cl-duties', extra));
  li.append(open);
  return li;
}

/** The case list: the filter form, the list and its "more" button. */
export class CaseList {
  constructor({ form, list, more, note, onOpen }) {
    Object.assign(this, { form, list, more, note, onOpen });
    this.next = null;
    this.seq = 0;
    form.addEventListener('submit', (event) => { event.preventDefault(); this.refresh(); });
    form.addEventListener('reset', () => setTimeout(() => this.refresh(), 0));
    more.addEventListener('click', () => this.load(false));
  }

  refresh() { return this.load(true); }

  async load(fresh) {
    const seq = ++this.seq;
    const f = readFilter(this.form);
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const key of ['state', 'category', 'area', 'source', 'grade']) if (f[key]) params.set(key, f[key]);
    if (f.overdue) params.set('overdue', 'true');
    if (!fresh && this.next) params.set('cursor', this.next);
    let reply;
    try {
      [reply] = await Promise.all([api(`cases?${params}`), loadCategories()]);  // the grades mark the rows
    } catch (err) {
      if (seq !== this.seq) return;
      this.note.textContent = err.message;
      this.note.hidden = false;
      return;
    }
    const found = reply.body.cases;
    const cursor = reply.body.next;
    if (seq !== this.seq) return;  // a newer refresh started meanwhile
    this.next = cursor;
    if (fresh) this.list.replaceChildren();
    this.list.append(...found.map((c) => caseRow(c, this.onOpen)));
    this.more.hidden = !cursor;
    this.note.hidden = this.list.children.length > 0;
    this.note.textContent = t('noCases');
    document.body.dataset.listVersion = String(Number(document.body.dataset.listVersion || 0) + 1);
    if (performance.getEntriesByName('gl-list').length === 0) performance.mark('gl-list');  // bench/console.py
  }
}

/** The inbox: what the caller must act on now, oldest due first, with the count on its tab. */
export class Inbox {
  constructor({ list, count, onOpen }) { Object.assign(this, { list, count, onOpen }); this.seq = 0; }

  async refresh() {
    const seq = ++this.seq;
    let reply;
    try {
      reply = await api('inbox?limit=100');
    } catch (err) {
      if (seq === this.seq) this.list.replaceChildren(el('li', 'gl-error', err.message));
      return;
    }
    if (seq !== this.seq) return;
    this.count.textContent = String(reply.body.total);
    this.list.replaceChildren(...reply.body.cases.map((c) => caseRow(c, this.onOpen,
      (c.duties || []).map((d) => t('action_' + d)).join(' · '))));
    if (!reply.body.cases.length) this.list.append(el('li', 'cl-hint cl-pad', t('inboxEmpty')));
  }
}

/** The live feed: calls onEvent(event) for each case event; `status(state)` with 'live' / 'retrying'. */
export class LiveFeed {
  constructor({ onEvent, status }) { Object.assign(this, { onEvent, status }); this.source = null; }

  start() {
    this.stop();
    const source = new EventSource('/api/v1/events/stream', { withCredentials: true });
    source.onopen = () => this.status('live');
    source.onerror = () => this.status(source.readyState === EventSource.CLOSED ? 'off' : 'retrying');
    source.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      event.received = performance.now();
      this.onEvent(event);
    };
    this.source = source;
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
    this.status('off');
  }
}
