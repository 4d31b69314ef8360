/* The registry table: the filter form → GET /api/v1/components, one keyset page at a time. "Next" follows the
 * page's `next` cursor; "previous" goes back along the cursors already followed (a keyset API has no offsets,
 * so a page never costs more than the first, however deep). The export link always carries the current filter. */

import { api } from '/static/common/api.js';
import { formatTime, t } from '/static/common/i18n.js';
import { el } from '/static/console/dom.js';

const FILTERS = ['text', 'class', 'status', 'area', 'changed_since', 'owner'];

/** The query of the filter form (empty fields left out; a date is the start of that day in Suzhou). */
export function filterQuery(form) {
  const data = new FormData(form);
  const query = {};
  for (const name of FILTERS) {
    const value = String(data.get(name) || '').trim();
    if (!value) continue;
    query[name] = name === 'changed_since' ? `${value}T00:00:00+08:00` : value;
  }
  return query;
}

export class RegistryTable {
  constructor({ form, rows, prev, next, pageNo, note, limit, onSelect, onRows }) {
    Object.assign(this, { form, rows, prev, next, pageNo, note, limit, onSelect, onRows });
    this.cursors = [null];  // the cursor of each page followed so far; the last one is the page shown
    this.features = [];
    this.selected = null;
    this.nextCursor = null;
    this.request = 0;
    form.addEventListener('submit', (event) => { event.preventDefault(); this.reload(); });
    form.addEventListener('reset', () => setTimeout(() => this.reload(), 0));
    form.addEventListener('gridlink:restored', () => this.reload());
    prev.addEventListener('click', () => { if (this.cursors.length > 1) { this.cursors.pop(); this.load(); } });
    next.addEventListener('click', () => { if (this.nextCursor) { this.cursors.push(this.nextCursor); this.load(); } });
    limit.addEventListener('change', () => this.reload());
    for (const button of document.querySelectorAll('.rg-th')) {
      button.addEventListener('click', () => this.sortBy(button.dataset.sort));
    }
  }

  /** The filter and sort of the table (for the export link and the map). */
  query() {
    return { ...filterQuery(this.form), sort: this.form.elements.namedItem('sort').value };
  }

  sortBy(key) {
    const select = this.form.elements.namedItem('sort');
    select.value = select.value === key ? `-${key}` : key;
    this.reload();
  }

  /** Back to the first page of the current filter. */
  reload() {
    this.cursors = [null];
    return this.load();
  }

  /** Show the current page again (after an edit), keeping the place. */
  refresh() { return this.load(); }

  async load() {
    const ask = ++this.request;
    const cursor = this.cursors[this.cursors.length - 1];
    const params = new URLSearchParams({ ...this.query(), limit: this.limit.value, ...(cursor ? { cursor } : {}) });
    this.note.textContent = t('loading');
    this.form.setAttribute('aria-busy', 'true');
    try {
      const reply = await api(`components?${params}`);
      if (ask !== this.request) return;
      this.features = reply.body.features;
      this.nextCursor = reply.body.next;
      this.render();
      this.onRows(this.features);
    } catch (err) {
      if (ask !== this.request) return;
      this.note.textContent = err.message;
      this.note.dataset.kind = 'error';
    } finally {
      if (ask === this.request) this.form.removeAttribute('aria-busy');
    }
  }

  render() {
    const n = this.cursors.length;
    this.note.dataset.kind = '';
    this.note.textContent = this.features.length ? t('rowsShown', { n, count: this.features.length }) : t('noRows');
    this.pageNo.textContent = t('pageNo', { n });
    this.prev.disabled = n <= 1;
    this.next.disabled = !this.nextCursor;
    const sort = this.form.elements.namedItem('sort').value;
    for (const th of document.querySelectorAll('#rg-table th[data-sort]')) {
      const key = th.dataset.sort;
      th.setAttribute('aria-sort', sort === key ? 'ascending' : sort === `-${key}` ? 'descending' : 'none');
    }
    this.rows.replaceChildren(...this.features.map((f) => this.row(f)));
    this.mark(this.selected);
  }

  row(feature) {
    const p = feature.properties;
    const tr = el('tr');
    tr.dataset.code = feature.id;
    const open = el('button', 'rg-code', feature.id);
    open.type = 'button';
    open.setAttribute('aria-label', t('openComponent', { code: feature.id }));
    open.addEventListener('click', () => this.onSelect(feature.id, feature));
    const code = el('td');
    code.append(open);
    tr.append(code, el('td', null, p.name || '—'), el('td', null, p.class_code),
      el('td', `rg-status rg-status-${p.status}`, t(`status_${p.status}`)), el('td', null, p.grid_code || '—'),
      el('td', null, p.owner_key), el('td', null, formatTime(p.changed_at)));
    tr.addEventListener('click', (event) => { if (event.target === tr || event.target.tagName === 'TD') this.onSelect(feature.id, feature); });
    return tr;
  }

  /** Mark the row of `code` as selected (if it is on this page) and scroll it into view. */
  mark(code) {
    this.selected = code;
    for (const tr of this.rows.children) {
      const on = tr.dataset.code === code;
      tr.classList.toggle('rg-selected', on);
      if (on) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
      if (on) tr.scrollIntoView({ block: 'nearest' });
    }
  }

  /** The feature of `code` if it is on this page. */
  find(code) { return this.features.find((f) => f.id === code) || null; }
}
