/* Importing a survey from the registry page: the file is posted as it is to POST /api/v1/components/imports
 * (dry run first by default), the job is polled for its progress, and its report is shown — the column mapping
 * (editable: the next run sends it as `mapping`), the diff summary (new / changed / unchanged / missing /
 * refused), the refused rows with their reasons and the link to download them in the survey's format. */

import { api } from '/static/common/api.js';
import { t } from '/static/common/i18n.js';
import { el } from '/static/console/dom.js';

const FIELDS = ['code', 'name', 'class_code', 'owner_key', 'manager_key', 'maintainer_key', 'status', 'note',
  'surveyed_on'];  // spatial/components/survey.py FIELDS
const POLL_MS = 400;
const $ = (id) => document.getElementById(id);

export class SurveyImport {
  constructor({ dialog, onStored }) {
    this.dialog = dialog;
    this.onStored = onStored;
    this.mapping = null;  // column → field or null, once a report has shown it
    this.file = null;
    $('rg-import-close').addEventListener('click', () => dialog.close());
    $('rg-import-run').addEventListener('click', () => this.run());
    $('rg-import-file').addEventListener('change', () => {  // another file: its columns are not known yet
      this.mapping = null;
      $('rg-mapping').hidden = true;
    });
  }

  open(owner, fixed) {
    const input = $('rg-import-owner');
    input.value = owner || '';
    input.readOnly = Boolean(fixed);
    $('rg-import-error').hidden = true;
    this.dialog.showModal();
  }

  fail(message) {
    $('rg-import-error').textContent = message;
    $('rg-import-error').hidden = false;
  }

  query(file) {
    const form = $('rg-import-form');
    const params = new URLSearchParams({ owner: $('rg-import-owner').value.trim(), filename: file.name });
    for (const name of ['dry_run', 'all_or_nothing', 'retire_missing']) {
      if (form.elements.namedItem(name).checked) params.set(name, 'true');
    }
    if (this.mapping) params.set('mapping', JSON.stringify(this.readMapping()));
    return params;
  }

  async run() {
    const file = $('rg-import-file').files[0];
    if (!file) { this.fail(t('chooseFile')); return; }
    $('rg-import-error').hidden = true;
    $('rg-report').hidden = true;
    $('rg-import-run').disabled = true;
    this.progress(0, null, t('uploading'));
    try {
      const started = await api(`components/imports?${this.query(file)}`, { method: 'POST', body: file,
        headers: { 'Content-Type': 'application/octet-stream' } });
      const job = await this.follow(started.headers.get('Location') || `/api/v1/components/imports/${started.body.id}`);
      this.show(job);
    } catch (err) {
      this.fail(err.message);
      $('rg-progress-box').hidden = true;
    } finally {
      $('rg-import-run').disabled = false;
    }
  }

  progress(read, total, text) {
    $('rg-progress-box').hidden = false;
    const bar = $('rg-progress');
    if (total) { bar.max = total; bar.value = read; } else { bar.removeAttribute('value'); }
    $('rg-progress-text').textContent = text;
  }

  /** Poll the job until it is no longer running; its last state. */
  async follow(location) {
    for (;;) {
      const job = (await api(location)).body;
      if (job.state !== 'running') {
        if (job.rows_total) this.progress(job.rows_read, job.rows_total, t('running', { read: job.rows_read, total: job.rows_total }));
        return job;
      }
      this.progress(job.rows_read, job.rows_total, job.rows_total
        ? t('running', { read: job.rows_read, total: job.rows_total }) : t('runningUnknown', { read: job.rows_read }));
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  show(job) {
    const box = $('rg-report');
    box.replaceChildren();
    box.hidden = false;
    if (job.state === 'failed') {
      const problem = job.problem || {};
      box.append(el('h3', null, t('importFailed')), el('p', 'gl-error', [problem.title, problem.detail].filter(Boolean).join(' — ')));
      return;
    }
    const r = job.report;
    this.mapping = r.mapping || null;
    this.renderMapping();
    box.append(el('h3', null, r.dry_run ? t('reportDry') : t('reportTitle')),
      el('p', r.stored ? 'rg-ok' : 'rg-hint', r.stored ? t('reportStored') : t('reportNotStored')));
    const summary = el('dl', 'rg-summary');
    summary.id = 'rg-summary';
    for (const key of ['rows', 'new', 'changed', 'unchanged', 'missing', 'refused', 'retired']) {
      const dd = el('dd', null, String(r[key] ?? 0));
      dd.dataset.key = key;
      summary.append(el('dt', null, t(key)), dd);
    }
    box.append(summary);
    const fields = Object.entries(r.changed_fields || {});
    if (fields.length) box.append(el('p', 'rg-hint', `${t('changedFields')}：${fields.map(([k, n]) => `${k} ${n}`).join('，')}`));
    if (r.refusals && r.refusals.length) {
      const list = el('ul', 'rg-refusals');
      for (const refusal of r.refusals) {
        list.append(el('li', null, `${t('rowNo')} ${refusal.row}${refusal.code ? ` (${refusal.code})` : ''}：${refusal.reason}`));
      }
      box.append(el('h4', null, t('refusals')), list);
    }
    if (job.rejects) {
      const link = el('a', 'gl-button', t('downloadRejects'));
      link.id = 'rg-rejects';
      link.href = `/api/v1/components/imports/${encodeURIComponent(job.id)}/rejects`;
      link.setAttribute('download', '');
      box.append(link);
    }
    if (r.stored) this.onStored(r);
  }

  renderMapping() {
    const rows = $('rg-mapping-rows');
    rows.replaceChildren();
    if (!this.mapping) { $('rg-mapping').hidden = true; return; }
    for (const [column, chosen] of Object.entries(this.mapping)) {
      const tr = el('tr');
      const select = el('select');
      select.dataset.column = column;
      select.setAttribute('aria-label', `${t('field')}: ${column}`);
      for (const value of ['', ...FIELDS]) {
        const option = el('option', null, value || t('ignore'));
        option.value = value;
        option.selected = (chosen || '') === value;
        select.append(option);
      }
      const td = el('td');
      td.append(select);
      tr.append(el('th', null, column), td);
      tr.firstChild.scope = 'row';
      rows.append(tr);
    }
    $('rg-mapping').hidden = false;
  }

  readMapping() {
    const mapping = {};
    for (const select of $('rg-mapping-rows').querySelectorAll('select')) {
      mapping[select.dataset.column] = select.value || null;
    }
    return mapping;
  }
}
