/* The case details panel: the case, its photos, component (with a link to it on the map), deadline countdown,
 * the full timeline, and exactly the actions the server says the reader may take now
 * (`workflow.allowed_actions` of GET /api/v1/cases/{id}), each with its form.
 *
 * Every action is sent with If-Match: the revision the panel shows. A 412 (someone moved the case first) or a
 * 409 (the action is no longer allowed) reloads the case and says so above the new state, instead of failing
 * silently; any other refusal is shown in the form, which stays filled. */

import { ApiError, api } from '/static/common/api.js';
import { formatTime, t } from '/static/common/i18n.js';
import { gradeOf, isOverdue, timeLeft } from './cases.js';
import { button, el } from './dom.js';

// The fields each action's form asks for (the server's rules: spatial/cases/action_rules.py).
const FORMS = {
  verify: ['result_bool', 'note'], register: ['note'], void: ['reason', 'note'],
  dispatch: ['target', 'reason', 'note'], accept: ['note'], return: ['reason', 'note'],
  extend: ['amount', 'reason', 'note'], suspend: ['reason', 'note'], resume: ['note'],
  handle: ['note_required'], assist_accept: ['note'], assist_handle: ['note_required'],
  check: ['result_check', 'note'], rework: ['note'], close: ['note'], evaluate: ['satisfaction', 'note'],
  reopen: ['note'], approve: ['note'], refuse: ['note'],
};
const PRIMARY = ['register', 'dispatch', 'accept', 'handle', 'check', 'close', 'approve'];

function select(name, options) {
  const s = el('select');
  s.name = name;
  for (const [value, label] of options) {
    const o = el('option', null, label);
    o.value = value;
    s.append(o);
  }
  return s;
}

function field(label, input) {
  const l = el('label');
  l.append(el('span', null, label), input);
  return l;
}

function input(name, attrs = {}) {
  const i = el(attrs.rows ? 'textarea' : 'input');
  i.name = name;
  for (const [k, v] of Object.entries(attrs)) i.setAttribute(k, v);
  return i;
}

function formFields(action) {
  const parts = [];
  for (const f of FORMS[action] || ['note']) {
    if (f === 'note' || f === 'note_required') {
      parts.push(field(t('note'), input('note', { rows: '2', maxlength: '2000', ...(f === 'note_required' ? { required: '' } : {}) })));
    } else if (f === 'reason') {
      parts.push(field(action === 'dispatch' ? t('reasonOther') : t('reason'),
        input('reason', { maxlength: '500', ...(action === 'dispatch' ? {} : { required: '' }) })));
    } else if (f === 'target') {
      parts.push(field(t('targetKey'), input('target_key', { maxlength: '32', placeholder: t('targetDefault') })),
        field(t('targetArea'), input('target_area', { maxlength: '16' })));
    } else if (f === 'amount') {
      parts.push(field(t('amount'), input('amount', { type: 'number', min: '1', max: '1000', required: '' })),
        field(t('unit'), select('unit', [['working_hours', t('unit_working_hours')],
          ['working_days', t('unit_working_days')], ['clock_hours', t('unit_clock_hours')]])));
    } else if (f === 'result_bool') {
      parts.push(field(t('result'), select('result', [['true', t('verified')], ['false', t('notVerified')]])));
    } else if (f === 'result_check') {
      parts.push(field(t('result'), select('result', [['pass', t('pass')], ['fail', t('fail')]])));
    } else if (f === 'satisfaction') {
      parts.push(field(t('satisfaction'), select('satisfaction', [['satisfied', t('sat_satisfied')],
        ['basically_satisfied', t('sat_basically_satisfied')], ['dissatisfied', t('sat_dissatisfied')]])));
    }
  }
  return parts;
}

/** The JSON body of an action from its form's values. */
export function actionBody(action, values) {
  const body = {};
  const data = {};
  if (values.note) body.note = values.note;
  if (values.reason) body.reason = values.reason;
  if (values.target_key) {
    body.target = { key: values.target_key };
    if (values.target_area) body.target.area = values.target_area;
  }
  if (values.amount) { data.amount = Number(values.amount); data.unit = values.unit; }
  if (values.result !== undefined) data.result = action === 'verify' ? values.result === 'true' : values.result;
  if (values.satisfaction) data.satisfaction = values.satisfaction;
  if (Object.keys(data).length) body.data = data;
  return body;
}

export class Details {
  constructor({ panel, onChanged, onShowOnMap, onClose }) {
    Object.assign(this, { panel, onChanged, onShowOnMap, onClose });
    this.current = null;
    this.seq = 0;
  }

  get openId() { return this.current ? this.current.id : null; }

  /** Load and show a case; `notice` is a message shown above it (why it was reloaded). */
  async open(id, notice, refresh = false) {
    const seq = ++this.seq;
    this.panel.hidden = false;
    let reply;
    try {
      reply = await api(`cases/${id}`);
    } catch (err) {
      if (seq !== this.seq) return;
      this.panel.replaceChildren(this.head(null), el('p', 'gl-error', err.message));
      return;
    }
    if (seq !== this.seq) return;
    if (refresh && this.openId === id && this.panel.querySelector('form.cl-action-form')) {
      this.markStale();  // a form was opened while the refresh was on its way: keep it
      return;
    }
    this.current = reply.body;
    this.render(reply.body, notice);
    this.loadPhotos(reply.body.id);
  }

  /** Reload the open case if it is `id` (a live event about it); while an action form is open it stays, and
   * the panel says the case changed (its submission then meets the server's 412 and shows the new state). */
  refreshIf(id) {
    if (this.openId !== id) return;
    if (this.panel.querySelector('form.cl-action-form')) { this.markStale(); return; }
    this.open(id, undefined, true);
  }

  markStale() {
    const box = this.panel.querySelector('.cl-stale');
    if (box) box.hidden = false;
  }

  close() {
    this.seq += 1;
    this.current = null;
    this.panel.hidden = true;
    this.panel.replaceChildren();
    if (this.onClose) this.onClose();
  }

  head(c) {
    const head = el('div', 'cl-details-head');
    const title = el('h2', null, c ? `${t('case')} ${c.case_no}` : t('case'));
    title.id = 'cl-details-title';
    head.append(title, button(t('print'), () => window.print(), 'gl-button cl-noprint'),
      button(t('close'), () => this.close(), 'gl-button cl-noprint'));
    return head;
  }

  render(c, notice) {
    const wf = c.workflow || {};
    const parts = [this.head(c)];
    if (notice) parts.push(el('p', 'cl-notice', notice));
    const stale = el('p', 'cl-notice cl-stale', t('changedMeanwhile'));
    stale.hidden = true;
    stale.append(' ', button(t('reload'), () => this.open(c.id)));
    parts.push(stale);
    const status = el('p', 'cl-status');
    status.append(el('span', `cl-state cl-state-${c.state}`, t('state_' + c.state)));
    const grade = gradeOf(c.category);
    if (grade) status.append(el('span', `cl-grade cl-grade-${grade}`, grade));
    if (isOverdue(c)) status.append(el('span', 'cl-overdue-mark', t('overdue')));
    if (wf.pending_action) status.append(el('span', 'cl-pending', t('pending', { a: t('action_' + wf.pending_action) })));
    parts.push(status);
    parts.push(this.facts(c, wf));
    parts.push(this.component(c));
    const photos = el('section', 'cl-photos');
    photos.append(el('h3', null, t('photos')), el('p', 'cl-hint', t('loading')));
    parts.push(photos);
    parts.push(this.actions(c, wf));
    parts.push(this.timeline(c.history || []));
    this.panel.replaceChildren(...parts);
    this.panel.dataset.caseId = c.id;
    this.panel.dataset.revision = wf.revision !== undefined ? wf.revision : '';
    this.panel.dataset.state = c.state;
  }

  facts(c, wf) {
    const dl = el('dl');
    const row = (k, v) => { if (v !== undefined && v !== null && v !== '') dl.append(el('dt', null, k), el('dd', null, v)); };
    row(t('category'), c.category);
    row(t('source'), t('source_' + c.source));
    row(t('description'), c.description);
    row(t('grid'), c.grid && `${c.grid.name || ''} ${c.grid.code}`);
    row(t('community'), c.community && c.community.name);
    row(t('town'), c.town && c.town.name);
    row(t('specialGrids'), (c.special_grids || []).map((g) => g.name || g.code).join('、'));
    row(t('owner'), c.owner && (c.owner.name || c.owner.key));
    row(t('reportedAt'), formatTime(c.reported_at));
    const open = !['closed', 'voided'].includes(c.state);
    const left = wf.time_left || {};  // counted on the category's clock (working calendar or clock hours)
    if (c.deadline) {
      row(t('deadline'), open ? `${formatTime(c.deadline)} (${timeLeft(left.deadline_s, left.counted, c.deadline)})`
        : formatTime(c.deadline));
    }
    if (open && wf.step_deadline) {
      row(t('stepDeadline'),
        `${formatTime(wf.step_deadline)} (${timeLeft(left.step_deadline_s, left.counted, wf.step_deadline)})`);
    }
    if (c.reporter) row(t('reporter'), [c.reporter.name, c.reporter.phone].filter(Boolean).join(' '));
    if (c.duplicate_of) row(t('duplicateOf'), String(c.duplicate_of));
    const box = el('section', 'cl-facts');
    box.append(dl);
    return box;
  }

  component(c) {
    const box = el('section', 'cl-component');
    box.append(el('h3', null, t('component')));
    if (!c.component) {
      box.append(el('p', 'cl-hint', t('noComponent')));
      return box;
    }
    const k = c.component;
    box.append(el('p', null, [k.code, k.class_name || k.class_code, k.name].filter(Boolean).join(' · ')));
    box.append(button(t('showOnMap'), () => this.onShowOnMap(c, k), 'gl-button cl-noprint'));
    return box;
  }

  async loadPhotos(id) {
    const box = this.panel.querySelector('.cl-photos');
    if (!box) return;
    let photos = null;
    try {
      photos = (await api(`cases/${id}/photos`)).body.photos;
    } catch (err) {
      photos = err.status === 404 && this.openId === id ? null : [];
      if (err.status !== 404) { box.lastChild.textContent = err.message; return; }
    }
    if (this.openId !== id) return;
    if (photos === null) { box.lastChild.textContent = t('photosUnavailable'); return; }
    if (!photos.length) { box.lastChild.textContent = t('noPhotos'); return; }
    const list = el('div', 'cl-photo-list');
    for (const p of photos) {
      const img = el('img');
      img.src = `${p.url}${p.url.includes('?') ? '&' : '?'}size=thumb`;  // the server's small copy
      img.alt = t('photoAlt', { n: p.id });
      img.loading = 'lazy';
      list.append(img);
    }
    box.lastChild.replaceWith(list);
  }

  actions(c, wf) {
    const box = el('section', 'cl-actions cl-noprint');
    box.append(el('h3', null, t('actions')));
    const allowed = wf.allowed_actions || [];
    if (!allowed.length) { box.append(el('p', 'cl-hint', t('noActions'))); return box; }
    const buttons = el('div', 'gl-actions');
    const sorted = [...allowed].sort((a, b) => (PRIMARY.includes(b) ? 1 : 0) - (PRIMARY.includes(a) ? 1 : 0));
    for (const action of sorted) {
      const b = button(t('action_' + action), () => this.showForm(c, action),
        PRIMARY.includes(action) ? 'gl-button gl-primary' : 'gl-button');
      b.dataset.action = action;
      buttons.append(b);
    }
    box.append(buttons);
    return box;
  }

  showForm(c, action) {
    const box = this.panel.querySelector('.cl-actions');
    const old = box.querySelector('form');
    if (old) old.remove();
    const form = el('form', 'gl-form cl-action-form');
    form.id = 'cl-action-form';
    form.dataset.keep = '';
    form.dataset.action = action;
    form.append(el('h4', null, t('action_' + action)), ...formFields(action));
    const error = el('p', 'gl-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const submit = el('button', 'gl-button gl-primary', t('submit'));
    submit.type = 'submit';
    const row = el('div', 'gl-actions');
    row.append(submit, button(t('cancel'), () => form.remove()));
    form.append(error, row);
    form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(c, action, form, error, submit); });
    box.append(form);
    const first = form.querySelector('input, select, textarea');
    if (first) first.focus();
  }

  async submit(c, action, form, error, submit) {
    const values = Object.fromEntries(new FormData(form).entries());
    submit.disabled = true;
    try {
      await api(`cases/${c.id}/actions/${action}`, { json: actionBody(action, values), ifMatch: c.workflow.revision });
      await this.open(c.id, t('done', { a: t('action_' + action) }));
      this.onChanged(c.id);
    } catch (err) {
      submit.disabled = false;
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 412 || err.status === 409) {
        const why = err.status === 412 ? t('staleRevision') : `${t('notAllowedNow')} ${err.message}`;
        await this.open(c.id, why);
        return;
      }
      if (err.status === 401) return;  // the shell asks for a login; the form is kept
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  timeline(history) {
    const box = el('section', 'cl-timeline');
    box.append(el('h3', null, t('timeline')));
    const ol = el('ol');
    for (const e of history) {
      const li = el('li');
      li.dataset.kind = e.kind;
      li.append(el('time', null, formatTime(e.at)), ' ',
        el('strong', null, t('action_' + e.kind)), ' ',
        el('span', 'cl-hint', [e.actor, e.role && t('role_' + e.role)].filter(Boolean).join(' · ')));
      if (e.note) li.append(el('p', null, e.note));
      if (e.data && Object.keys(e.data).length) li.append(el('p', 'cl-hint cl-data', JSON.stringify(e.data)));
      ol.append(li);
    }
    box.append(ol);
    return box;
  }
}
