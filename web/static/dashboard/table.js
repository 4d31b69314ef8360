/* The ranking table: one row per group of GET /api/v1/kpi, in the API's order (best first) until a column
 * header is clicked; a second click reverses. Text from the API goes in as text only. Each cell carries its
 * field (`data-field`) so that tests and readers can find a figure. */

import { t } from '/static/common/i18n.js';

export const COLUMNS = ['rank', 'key', 'name', 'grade', 'score', 'reported', 'due', 'closed', 'closure_rate',
  'on_time_closure_rate', 'on_time_handling_rate', 'rework_rate'];
const TEXT = new Set(['key', 'name', 'grade']);
const RATES = new Set(['closure_rate', 'on_time_closure_rate', 'handling_rate', 'on_time_handling_rate',
  'rework_rate']);

/** A figure as the page writes it: rates as percentages (the API's four digits: two decimals), scores with
 * two decimals, nothing as '—'. */
export function formatValue(field, value) {
  if (value === null || value === undefined || value === '') return '—';
  if (RATES.has(field)) return `${(value * 100).toFixed(2)}%`;
  if (field === 'score') return Number(value).toFixed(2);
  return String(value);
}

function compare(field, direction) {
  return (a, b) => {
    const x = a[field], y = b[field];
    if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;  // nothing: always last
    if (y === null || y === undefined) return -1;
    const order = TEXT.has(field) ? String(x).localeCompare(String(y), 'zh-CN') : x - y;
    return direction === 'ascending' ? order : -order;
  };
}

export class RankingTable {
  constructor(table) {
    this.table = table;
    this.groups = [];
    this.sort = null;  // {field, direction}
    this.reportLink = null;  // (group) => href: a town's printable report (towns over one month only)
  }

  /** Show `groups` in the API's order; `reportLink` adds a column of links to each town's monthly report. */
  show(groups, reportLink = null) {
    this.groups = groups;
    this.reportLink = reportLink;
    this.sort = null;
    this.render();
  }

  header() {
    const row = this.table.tHead.rows[0];
    row.replaceChildren();
    for (const field of COLUMNS) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.dataset.field = field;
      const sorted = this.sort && this.sort.field === field;
      th.setAttribute('aria-sort', sorted ? this.sort.direction : 'none');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'db-sort';
      b.textContent = t(`col_${field}`);
      b.title = t('sortBy', { col: t(`col_${field}`) });
      b.addEventListener('click', () => this.sortBy(field));
      th.append(b);
      row.append(th);
    }
    if (this.reportLink) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = t('col_report');
      row.append(th);
    }
  }

  sortBy(field) {
    const again = this.sort && this.sort.field === field;
    const first = TEXT.has(field) || field === 'rank' || field === 'rework_rate' ? 'ascending' : 'descending';
    const direction = again ? (this.sort.direction === 'ascending' ? 'descending' : 'ascending') : first;
    this.sort = { field, direction };
    this.render();
  }

  render() {
    this.header();
    const rows = this.sort ? [...this.groups].sort(compare(this.sort.field, this.sort.direction)) : this.groups;
    const body = document.createDocumentFragment();
    for (const g of rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = g.key;
      for (const field of COLUMNS) {
        const td = document.createElement(field === 'key' ? 'th' : 'td');
        if (field === 'key') td.scope = 'row';
        td.dataset.field = field;
        td.textContent = formatValue(field, g[field]);
        if (field === 'grade' && g.grade) td.className = `db-grade db-grade-${g.grade}`;
        tr.append(td);
      }
      if (this.reportLink) {
        const td = document.createElement('td');
        const href = this.reportLink(g);
        if (href) {
          const a = document.createElement('a');
          a.href = href;
          a.target = '_blank';
          a.rel = 'noopener';
          a.textContent = t('report');
          td.append(a);
        }
        tr.append(td);
      }
      body.append(tr);
    }
    this.table.tBodies[0].replaceChildren(body);
  }
}
