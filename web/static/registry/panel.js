/* The open component: its attributes and (for its owner and admins) its history; for an account that may edit
 * it, the attribute form (PATCH, a JSON merge patch), the status change with its reason (POST …/status) and
 * the move on the map (PATCH of the geometry), each with If-Match of the revision shown. A 412 (someone saved
 * first) shows the newer version with what the user had tried, never a silent failure. */

import { api } from '/static/common/api.js';
import { formatTime, t } from '/static/common/i18n.js';
import { notify } from '/static/common/shell.js';
import { button, el } from '/static/console/dom.js';

const STATUSES = ['intact', 'damaged', 'missing', 'abandoned', 'removed'];
const EDITABLE = [['name', 'name', 200], ['note', 'note', 2000], ['manager_key', 'manager', 64],
  ['maintainer_key', 'maintainer', 64]];

function dl(pairs) {
  const list = el('dl', 'rg-attrs');
  for (const [label, value] of pairs) list.append(el('dt', null, label), el('dd', null, value ?? '—'));
  return list;
}

function field(label, input) {
  const wrap = el('label');
  wrap.append(el('span', null, label), input);
  return wrap;
}

function describeChanges(changes) {
  if (!changes || typeof changes !== 'object') return '';
  return Object.entries(changes).map(([k, v]) => {
    if (v && typeof v === 'object' && 'old' in v) return `${k}: ${v.old ?? '—'} → ${v.new ?? '—'}`;
    if (v && typeof v === 'object' && 'from' in v) return `${k}: ${v.from ?? '—'} → ${v.to ?? '—'}`;
    return `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`;
  }).join('；');
}

export class ComponentPanel {
  constructor({ panel, map, canEdit, onChanged, onClose }) {
    Object.assign(this, { panel, map, canEdit, onChanged, onClose });
    this.feature = null;
    this.revision = null;
    this.message = null;
  }

  get code() { return this.feature ? this.feature.id : null; }

  /** Read and show component `code` (again); `message` is shown above it ({text, kind}). */
  async open(code, message = null) {
    this.map.stopMove();
    const reply = await api(`components/${encodeURIComponent(code)}`);
    this.feature = reply.body;
    this.revision = Number((reply.headers.get('ETag') || '').replace(/\D/g, '')) || reply.body.properties.revision;
    this.message = message;
    this.render();
    return this.feature;
  }

  close() {
    this.map.stopMove();
    this.feature = null;
    this.panel.hidden = true;
    this.panel.replaceChildren();
    this.onClose();
  }

  render() {
    const f = this.feature;
    const p = f.properties;
    const head = el('div', 'rg-panel-head');
    head.append(el('h2', null, `${p.name || t('code')} · ${f.id}`),
      button(t('close'), () => this.close()));
    const parts = [head];
    if (this.message) {
      const note = el('p', 'rg-message', this.message.text);
      note.dataset.kind = this.message.kind || 'info';
      note.setAttribute('role', this.message.kind === 'warn' ? 'alert' : 'status');
      note.id = 'rg-message';
      parts.push(note);
    }
    parts.push(el('h3', null, t('attributes')), dl([
      [t('code'), f.id], [t('name'), p.name], [t('klass'), p.class_code], [t('status'), t(`status_${p.status}`)],
      [t('grid'), p.grid_code], [t('owner'), p.owner_key], [t('manager'), p.manager_key],
      [t('maintainer'), p.maintainer_key], [t('surveyedOn'), p.surveyed_on], [t('changedAt'), formatTime(p.changed_at)],
      [t('note'), p.note], [t('revision'), String(this.revision)],
      [t('geometry'), f.geometry ? `${f.geometry.type} ${f.geometry.type === 'Point'
        ? f.geometry.coordinates.map((c) => c.toFixed(6)).join(', ') : ''}` : '—']]));
    parts.push(button(t('flyTo'), () => this.map.select(f, true)));
    if (this.canEdit(p.owner_key)) parts.push(this.editForm(), this.statusForm(), this.moveBox());
    parts.push(this.historyBox());
    this.panel.replaceChildren(...parts);
    this.panel.hidden = false;
  }

  historyBox() {
    const box = el('section', 'rg-history');
    box.append(el('h3', null, t('history')));
    if (!Array.isArray(this.feature.history)) {
      box.append(el('p', 'rg-hint', t('historyHidden')));
      return box;
    }
    const list = el('ol', 'rg-history-list');
    list.id = 'rg-history';
    for (const h of [...this.feature.history].reverse()) {
      const item = el('li');
      const reason = h.changes && h.changes.reason;
      item.append(el('span', 'rg-when', formatTime(h.at)), el('strong', null, ` ${t(`action_${h.action}`)} `),
        el('span', null, h.actor));
      const detail = describeChanges(Object.fromEntries(Object.entries(h.changes || {}).filter(([k]) => k !== 'reason')));
      if (detail) item.append(el('div', 'rg-hint', detail));
      if (reason) item.append(el('div', null, `${t('reason')}：${reason}`));
      list.append(item);
    }
    if (!list.children.length) box.append(el('p', 'rg-hint', t('noHistory')));
    box.append(list);
    return box;
  }

  editForm() {
    const p = this.feature.properties;
    const form = el('form', 'gl-form rg-edit');
    form.id = 'rg-edit';
    form.append(el('h3', null, t('edit')));
    for (const [name, label, max] of EDITABLE) {
      const input = el(name === 'note' ? 'textarea' : 'input');
      input.name = name;
      input.maxLength = max;
      input.value = p[name] || '';
      if (name === 'note') input.rows = 2;
      form.append(field(t(label), input));
    }
    const save = el('button', 'gl-button gl-primary', t('save'));
    save.type = 'submit';
    const actions = el('div', 'gl-actions');
    actions.append(save);
    form.append(actions);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const changed = {};
      for (const [name] of EDITABLE) {
        const value = form.elements.namedItem(name).value.trim();
        if (value !== (p[name] || '')) changed[name] = value || null;
      }
      if (Object.keys(changed).length) this.save('PATCH', '', { properties: changed }, describeChanges(changed));
    });
    return form;
  }

  statusForm() {
    const p = this.feature.properties;
    const form = el('form', 'gl-form rg-status-form');
    form.id = 'rg-status';
    form.append(el('h3', null, t('changeStatus')));
    const select = el('select');
    select.name = 'status';
    for (const s of STATUSES) {
      const option = el('option', null, t(`status_${s}`));
      option.value = s;
      option.selected = s === p.status;
      select.append(option);
    }
    const reason = el('input');
    reason.name = 'reason';
    reason.maxLength = 500;
    reason.required = true;
    form.append(field(t('newStatus'), select), field(t('reason'), reason));
    const save = el('button', 'gl-button gl-primary', t('changeStatus'));
    save.type = 'submit';
    const actions = el('div', 'gl-actions');
    actions.append(save);
    form.append(actions);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!reason.value.trim()) { notify(t('reasonRequired'), 'warn'); return; }
      this.save('POST', '/status', { status: select.value, reason: reason.value.trim() },
        `${t('status')}: ${t(`status_${select.value}`)}`);
    });
    return form;
  }

  moveBox() {
    const box = el('section', 'rg-move');
    const geometry = this.feature.geometry;
    if (!geometry || geometry.type !== 'Point') {
      box.append(el('p', 'rg-hint', t('moveOnlyPoints')));
      return box;
    }
    let target = null;
    const save = button(t('saveMove'), () => {
      if (!target) return;
      this.save('PATCH', '', { geometry: { type: 'Point', coordinates: target } },
        `${t('geometry')}: ${target.map((c) => c.toFixed(6)).join(', ')}`);
    }, 'gl-button gl-primary');
    save.id = 'rg-move-save';
    save.disabled = true;
    const cancel = button(t('cancel'), () => { this.map.stopMove(); hint(false); save.disabled = true; });
    const start = button(t('move'), () => {
      hint(true);
      this.map.startMove(geometry.coordinates, (lngLat) => { target = lngLat; save.disabled = false; });
    });
    start.id = 'rg-move-start';
    const hint = (on) => { document.getElementById('rg-move-hint').hidden = !on; };
    box.append(el('h3', null, t('move')), start, ' ', save, ' ', cancel);
    return box;
  }

  /** Send one edit with If-Match; on 412 show the newer version, on success the new one. */
  async save(method, suffix, json, mine) {
    const code = this.code;
    try {
      const reply = await api(`components/${encodeURIComponent(code)}${suffix}`, { method, json, ifMatch: this.revision });
      const rev = (reply.headers.get('ETag') || '').replace(/\D/g, '');
      document.getElementById('rg-move-hint').hidden = true;
      await this.open(code, { text: t('saved', { code, rev }), kind: 'ok' });
      this.onChanged(this.feature);
    } catch (err) {
      if (err.status === 412) {
        await this.open(code);
        this.message = { text: t('stale', { rev: this.revision, mine }), kind: 'warn' };
        this.render();
        this.onChanged(this.feature);
        return;
      }
      this.message = { text: err.message, kind: 'warn' };
      this.render();
    }
  }
}
