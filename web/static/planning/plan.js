/* The plan panel of the planner's page: the caller's plans, the edit form (drawn gestures go through the map's
 * drawing tool), the draft's edits, the impact preview (numbers, problems, what moves, workload per grid before
 * and after — on the map and as tables), commit now or at a future time, cancel a scheduled plan, roll back a
 * committed one. Every answer is the server's (/api/v1/plans): the page draws the snapped shapes it returns. */

import { api } from '/static/common/api.js';
import { notify } from '/static/common/shell.js';
import { formatTime, t } from '/static/common/i18n.js';
import { button, el } from '/static/console/dom.js';
import { setData } from './layers.js';

const $ = (id) => document.getElementById(id);
const DRAWN = { move: 'line', split: 'line', create: 'polygon' };
const FIELDS = { move: [], split: ['code', 'new_code'], merge: ['code', 'into'], create: ['code', 'name'],
  retire: ['code'], recode: ['code', 'new_code'], rename: ['code', 'name'] };

function table(caption, head, rows) {
  const tbl = el('table', 'pl-table');
  tbl.append(el('caption', null, caption));
  const tr = el('tr');
  for (const h of head) {
    const th = el('th', null, h);
    th.scope = 'col';
    tr.append(th);
  }
  const thead = el('thead');
  thead.append(tr);
  tbl.append(thead);
  const body = el('tbody');
  for (const cells of rows) {
    const row = el('tr');
    for (const c of cells) row.append(c instanceof Node ? wrap(c) : el('td', null, c));
    body.append(row);
  }
  tbl.append(body);
  return tbl;
}

function wrap(node) {
  const td = el('td');
  td.append(node);
  return td;
}

const pair = (v) => `${v.before} → ${v.after}`;

export class PlanPanel {
  /** map: the MapLibre map; drawing: the Drawing tool; level(): the level edited; editable(): may edit now;
   * onCommitted(): the live grids changed; onShowComponent(code) / onLocate(lon, lat): the info panel. */
  constructor({ map, drawing, level, editable, onCommitted, onShowComponent, onLocate }) {
    Object.assign(this, { map, drawing, level, editable, onCommitted, onShowComponent, onLocate });
    this.plan = null;
    this.preview = null;
    this.timings = [];
    $('pl-op').addEventListener('change', () => this.showFields());
    $('pl-edit').addEventListener('submit', (event) => { event.preventDefault(); this.submitEdit(); });
    $('pl-plan-pick').addEventListener('submit', (event) => { event.preventDefault(); this.create(); });
    $('pl-plan-select').addEventListener('change', () => this.open(Number($('pl-plan-select').value) || null));
    $('pl-commit').addEventListener('submit', (event) => { event.preventDefault(); this.commit(); });
    $('pl-cancel-button').addEventListener('click', () => this.act('cancel'));
    $('pl-rollback-button').addEventListener('click', () => this.act('rollback'));
    this.showFields();
  }

  showFields() {
    const op = $('pl-op').value;
    for (const label of $('pl-edit').querySelectorAll('label[data-for]')) {
      label.hidden = !label.dataset.for.split(' ').includes(op);
    }
    $('pl-op-hint').textContent = t(`hint_${op}`);
    $('pl-edit-submit').textContent = DRAWN[op] ? t('drawOnMap') : t('addEdit');
  }

  /** Fill the edit form's grid code (a grid clicked on the map). */
  pick(code) {
    if (!$('pl-code').closest('label').hidden || !$('pl-code').value) $('pl-code').value = code;
  }

  async list(selectId = null) {
    const plans = (await api('plans')).body;
    const select = $('pl-plan-select');
    select.replaceChildren(el('option', null, t('noPlan')));
    select.firstChild.value = '';
    for (const p of plans.slice(0, 100)) {
      const option = el('option', null, `#${p.id} ${p.title} · ${t('state_' + p.state)}`);
      option.value = String(p.id);
      select.append(option);
    }
    const keep = selectId || (this.plan && this.plan.id);
    if (keep) select.value = String(keep);
  }

  async create(title) {
    const name = title || $('pl-plan-title').value.trim() || t('defaultTitle', { date: new Date().toLocaleDateString('zh-CN') });
    try {
      const plan = (await api('plans', { json: { title: name } })).body;
      $('pl-plan-title').value = '';
      await this.list(plan.id);
      this.render(plan);
      this.showPreview(null);
      return plan;
    } catch (err) {
      notify(err.message, 'error');
      return null;
    }
  }

  async open(id) {
    this.clear();
    if (!id) return;
    try {
      this.render((await api(`plans/${id}`)).body);
      if (this.plan.edits.length && this.plan.state !== 'committed') await this.refreshPreview();
    } catch (err) {
      notify(err.message, 'error');
    }
  }

  clear() {
    this.plan = null;
    this.render(null);
    this.showPreview(null);
  }

  /** Show a plan: its state, its edits (listed, and their shapes on the map), the commit buttons. */
  render(plan) {
    this.plan = plan;
    const box = $('pl-plan-box');
    box.dataset.planId = plan ? plan.id : '';
    box.dataset.state = plan ? plan.state : '';
    $('pl-plan-state').textContent = plan
      ? t('planState', { id: plan.id, title: plan.title, state: t('state_' + plan.state) })
        + (plan.effective_at ? ` · ${t('effectiveAt')} ${formatTime(plan.effective_at)}` : '') : t('noPlanYet');
    const list = $('pl-edits');
    list.replaceChildren(...(plan ? plan.edits : []).map((e) => {
      const li = el('li', null, `${t('op_' + e.op)} ${e.code || ''}${e.new_code ? ' → ' + e.new_code : ''}`
        + `${e.name ? ' · ' + e.name : ''}`);
      li.dataset.op = e.op;
      return li;
    }));
    if (plan && !plan.edits.length) list.append(el('li', 'pl-hint', t('noEdits')));
    setData(this.map, 'pl-planned', (plan ? plan.edits : []).filter((e) => e.geometry).map((e) => (
      { type: 'Feature', geometry: e.geometry, properties: { code: e.new_code || e.code, op: e.op } })));
    const state = plan ? plan.state : null;
    const editable = this.editable();
    $('pl-edit').hidden = !editable || (state !== null && state !== 'draft');
    $('pl-commit').hidden = !plan || !editable;
    $('pl-commit-button').hidden = state !== 'draft';
    $('pl-cancel-button').hidden = state !== 'scheduled';
    $('pl-rollback-button').hidden = state !== 'committed';
  }

  async submitEdit() {
    if (!$('pl-edit').reportValidity()) return;
    const op = $('pl-op').value;
    const form = new FormData($('pl-edit'));
    const body = { op };
    for (const name of FIELDS[op]) {
      const value = String(form.get(name) || '').trim();
      if (value) body[name] = value;
    }
    if (op === 'move' || op === 'create') body.level = this.level();
    if (DRAWN[op]) {
      this.drawing.start(DRAWN[op], (geometry) => {
        body[DRAWN[op]] = geometry;
        this.send(body);
      });
      return;
    }
    await this.send(body);
  }

  /** Add one edit to the open draft (a new draft when none is open), then preview the plan. */
  async send(body) {
    const started = performance.now();
    delete $('pl-preview').dataset.drawn;
    if (!this.plan || this.plan.state !== 'draft') {
      if (!(await this.create())) return;
    }
    try {
      const plan = (await api(`plans/${this.plan.id}/edits`, { json: body })).body;
      this.render(plan);
      notify(t('editAdded', { op: t('op_' + body.op) }));
      await this.refreshPreview(started);
    } catch (err) {
      setData(this.map, 'pl-draw', null);
      notify(`${t('editRefused')}: ${err.message}`, 'error');
    }
  }

  async refreshPreview(started = null) {
    const id = this.plan.id;
    delete $('pl-preview').dataset.drawn;  // the preview drawn before this edit is stale from here on
    $('pl-preview').dataset.loading = '1';
    try {
      const preview = (await api(`plans/${id}/preview`)).body;
      if (!this.plan || this.plan.id !== id) return;
      this.showPreview(preview);
      setData(this.map, 'pl-draw', null);
      this.map.once('idle', () => {  // drawn: the bench reads this from the line's end to here
        performance.mark('pl-preview-drawn');
        if (started !== null) this.timings.push(performance.now() - started);
        $('pl-preview').dataset.drawn = String(id);
      });
      this.map.triggerRepaint();
    } catch (err) {
      notify(err.message, 'error');
    } finally {
      delete $('pl-preview').dataset.loading;
    }
  }

  showPreview(preview) {
    this.preview = preview;
    const body = $('pl-preview-body');
    delete $('pl-preview').dataset.drawn;
    setData(this.map, 'pl-problems', preview ? preview.problems.filter((p) => p.geometry).map((p) => (
      { type: 'Feature', geometry: p.geometry, properties: { kind: p.kind } })) : null);
    setData(this.map, 'pl-moved', preview ? preview.geojson : null);
    if (!preview) {
      body.replaceChildren(el('p', 'pl-hint', t('noPreview')));
      return;
    }
    const n = preview.numbers;
    const summary = el('p', 'pl-numbers', t('previewNumbers', { components: n.components, cases: n.open_cases,
      problems: preview.problems.length }));
    summary.id = 'pl-numbers';
    body.replaceChildren(summary, this.problems(preview.problems), this.workload(preview.workload),
      this.moved(preview));
  }

  problems(problems) {
    const box = el('div', 'pl-problems');
    box.id = 'pl-problem-list';
    if (!problems.length) {
      box.append(el('p', 'pl-ok', t('noProblems')));
      return box;
    }
    const list = el('ol');
    for (const p of problems) {
      const li = el('li', 'pl-problem');
      li.append(button(`${t('problem_' + p.kind)} · ${p.codes.join(', ')} · ${p.area_m2} m²`,
        () => p.location && this.onLocate(p.location[0], p.location[1]), 'pl-link'));
      if (p.action) li.append(el('span', 'pl-hint', ` ${p.action}`));
      list.append(li);
    }
    box.append(el('h4', 'pl-warn', t('problemsHeading', { n: problems.length })), list);
    return box;
  }

  workload(rows) {
    const tbl = table(t('workloadHeading'), [t('code'), t('areaM2'), t('components'), t('openCases'),
      t('casesPerMonth')], rows.map((w) => [w.code, pair(w.area_m2), pair(w.components), pair(w.open_cases),
      pair(w.cases_per_month)]));
    tbl.id = 'pl-workload';
    return tbl;
  }

  moved(preview) {
    const box = el('div');
    const comps = preview.components.slice(0, 200).map((c) => [
      button(c.code, () => this.onShowComponent(c.code), 'pl-link'), c.class_code, c.before || '—', c.after || '—']);
    const tbl = table(t('movedComponents', { n: preview.components.length }),
      [t('componentCode'), t('klass'), t('before'), t('after')], comps);
    tbl.id = 'pl-moved-components';
    const cases = table(t('movedCases', { n: preview.open_cases.length }), [t('caseNo'), t('before'), t('after')],
      preview.open_cases.slice(0, 200).map((k) => [k.case_no || `#${k.id}`, k.before || '—', k.after || '—']));
    cases.id = 'pl-moved-cases';
    box.append(tbl, cases);
    return box;
  }

  async commit() {
    if (!this.plan) return;
    const form = new FormData($('pl-commit'));
    const json = {};
    if (form.get('when') === 'at') {
      const local = String(form.get('effective_at') || '');
      if (!local) { notify(t('pickTime'), 'warn'); return; }
      json.effective_at = new Date(local).toISOString();  // the browser's clock: Asia/Shanghai at the centre
    }
    try {
      const result = (await api(`plans/${this.plan.id}/commit`, { json })).body;
      this.result(result);
      this.render((await api(`plans/${this.plan.id}`)).body);  // the preview stays: what moved, to look at
      await this.list();
      if (result.state === 'committed') this.onCommitted();
    } catch (err) {
      notify(`${t('commitRefused')}: ${err.message}`, 'error');
      if (err.problem && Array.isArray(err.problem.problems)) {
        this.showPreview({ ...(this.preview || { numbers: { components: 0, open_cases: 0 }, workload: [],
          components: [], open_cases: [], geojson: null }), problems: err.problem.problems });
      }
    }
  }

  result(r) {
    const text = r.state === 'scheduled' ? t('scheduled', { at: formatTime(r.effective_at) })
      : t('committed', { version: r.version, components: r.reassigned ? r.reassigned.components : 0,
        cases: r.reassigned ? r.reassigned.open_cases : 0 });
    $('pl-commit-result').textContent = text;
    notify(text);
  }

  async act(what) {
    if (!this.plan) return;
    try {
      const result = (await api(`plans/${this.plan.id}/${what}`, { method: 'POST' })).body;
      const id = what === 'rollback' ? (result.plan || this.plan.id) : this.plan.id;
      $('pl-commit-result').textContent = what === 'rollback' ? t('rolledBack', { id }) : t('cancelled');
      notify($('pl-commit-result').textContent);
      await this.list(id);
      await this.open(id);
      if (what === 'rollback') this.onCommitted();
    } catch (err) {
      notify(err.message, 'error');
    }
  }
}
