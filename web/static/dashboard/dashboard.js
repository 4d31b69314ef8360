/* The evaluation dashboard (issue 21 item 3): wires the shell (login, navigation, language), the period and
 * level form, and the parts that each read GET /api/v1/kpi (scoped by the server to the caller; the page only
 * reads): the totals and the 70 / 20 / 10 split, the ranking table, the trends by month (one evaluation per
 * month, its totals), the overdue and rework hot spots (the period's base grids) and the heat map
 * (GET /api/v1/kpi/heat). The form's choice is kept in the address (?kind=month&month=2026-11&level=town),
 * so a view can be linked and reloaded. */

import './strings.js';
import { api } from '/static/common/api.js';
import { initShell } from '/static/common/shell.js';
import { onLangChange, t } from '/static/common/i18n.js';
import { lineChart, splitBar } from './charts.js';
import { lastMonth, monthsOf, periodOf, previousDay } from './period.js';
import { RankingTable, formatValue } from './table.js';

const body = document.body.dataset;
const $ = (id) => document.getElementById(id);
const FIELDS = ['kind', 'month', 'year', 'quarter', 'from', 'to', 'level', 'area'];
const FIGURES = ['reported', 'due', 'closed', 'closure_rate', 'on_time_closure_rate', 'on_time_handling_rate',
  'rework_rate'];
const TRENDS = [['reported', (v) => String(Math.round(v))], ['closure_rate', pct], ['on_time_handling_rate', pct],
  ['rework_rate', pct]];
const HOT = 10;
const state = { account: null, map: null, mapReady: null, heat: null, table: null, loads: 0, abort: null,
  last: null };

function pct(v) { return `${Math.round(v * 100)}%`; }

/** The level a scope can be ranked at by default: the units below it (a town's communities, …). */
function defaultLevel(account) {
  const scope = account.scope;
  if (scope === '*' || /^\d{6}$/.test(scope)) return 'town';
  if (/^\d{9}$/.test(scope)) return 'community';
  if (/^\d{12,15}$/.test(scope) || /^\d{6}[A-Z]\d{4}$/.test(scope)) return 'grid';
  return 'department';
}

function fillForm(account) {
  const form = $('db-controls');
  const asked = new URLSearchParams(window.location.search);
  const today = new Date();
  const defaults = { kind: 'month', month: lastMonth(today), year: String(today.getFullYear()),
    quarter: String(Math.floor(today.getMonth() / 3) || 4), level: defaultLevel(account), area: '' };
  for (const name of FIELDS) {
    const value = asked.get(name) ?? defaults[name];
    if (value !== undefined && value !== null) form.elements[name].value = value;
  }
  showKindFields();
}

function showKindFields() {
  const kind = $('db-kind').value;
  for (const label of $('db-controls').querySelectorAll('label[data-for]')) {
    label.hidden = !label.dataset.for.split(' ').includes(kind);
  }
}

function choice() {
  const form = $('db-controls');
  return Object.fromEntries(FIELDS.map((name) => [name, form.elements[name].value.trim()]));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  return q.toString();
}

async function kpi(group, period, area, signal) {
  return (await api(`kpi?${query({ group, from: period.from, to: period.to, area })}`, { signal })).body;
}

function showTotals(totals) {
  const dl = $('db-totals');
  dl.replaceChildren();
  for (const field of FIGURES) {
    const box = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = t(`fig_${field}`);
    const dd = document.createElement('dd');
    dd.dataset.field = field;
    dd.textContent = formatValue(field, totals[field]);
    box.append(dt, dd);
    dl.append(box);
  }
  $('db-split').replaceChildren(splitBar(totals.split, (w) => t(`split_${w}`), t('target')));
}

/** The town whose monthly report the choice names: a month, and a town as the area or the account's scope. */
function ownTown(c, account) {
  if (c.kind !== 'month') return null;
  const town = [c.area, account.scope].find((code) => /^\d{9}$/.test(code || ''));
  return town || null;
}

function reportLink(c, period) {
  if (c.level !== 'town' || c.kind !== 'month') return null;
  return (g) => `/api/v1/kpi/report?${query({ town: g.key, month: period.from.slice(0, 7) })}`;
}

function showRanking(report, c, period) {
  state.table.show(report.groups, reportLink(c, period));
  $('db-ranking-count').textContent = t('rows', { n: report.groups.length });
  if (!performance.getEntriesByName('db-ranking').length) performance.mark('db-ranking');  // bench/dashboard.py
  body.ranking = String(state.loads);
}

function hotList(list, groups, count, label) {
  list.replaceChildren();
  const top = groups.filter((g) => count(g) > 0).sort((a, b) => count(b) - count(a) || a.key.localeCompare(b.key))
    .slice(0, HOT);
  for (const g of top) {
    const li = document.createElement('li');
    li.dataset.key = g.key;
    li.textContent = `${g.name || g.key}（${g.key}）· ${t(label, { n: count(g) })}`;
    list.append(li);
  }
  if (!top.length) list.append(Object.assign(document.createElement('li'), { textContent: t('none') }));
}

function showHot(grids) {
  // Overdue: due cases not closed by their deadline (still open past it, or closed late).
  hotList($('db-hot-overdue'), grids.groups, (g) => g.due - g.closed_on_time, 'overdueCount');
  hotList($('db-hot-rework'), grids.groups, (g) => g.reworked, 'reworkCount');
}

async function showTrends(c, period, signal) {
  const months = monthsOf(period);
  const totals = [];
  for (let i = 0; i < months.length; i += 3) {  // three at a time: the server has other callers
    const batch = months.slice(i, i + 3).map((m) => kpi(c.level, m, c.area, signal).then((r) => r.totals));
    totals.push(...await Promise.all(batch));
  }
  if (signal.aborted) return;
  const box = $('db-trends');
  box.replaceChildren(...TRENDS.map(([field, format]) => lineChart(t(`trend_${field}`),
    months.map((m, i) => ({ label: m.month.slice(2).replace('-', '/'), value: totals[i][field] })), format)));
}

async function showHeatMap(c, period, signal) {
  const cells = (await api(`kpi/heat?${query({ group: c.level, from: period.from, to: period.to,
    area: c.area })}`, { signal })).body;
  const map = await state.mapReady;
  if (signal.aborted) return;
  $('db-heat-count').textContent = t('heatCount', { n: cells.cases });
  state.heat.showHeat(map, cells);
}

function fail(err) {
  if (err && err.name === 'AbortError') return;
  $('db-error').textContent = err.message || String(err);
  $('db-error').hidden = false;
}

/** Evaluate the form's choice: the ranking and the heat map at once, then the hot spots and the trends. */
async function load() {
  const c = choice();
  const period = periodOf(c);
  $('db-error').hidden = true;
  if (!period) { fail(new Error(t('badPeriod'))); return; }
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  state.loads += 1;
  state.last = { ...c, ...period };
  const signal = abort.signal;
  window.history.replaceState(null, '', `${window.location.pathname}?${query(c)}`);
  const scope = state.account.scope === '*' ? t('wholeCity') : state.account.scope;
  $('db-period').textContent = t('periodShown', { from: period.from, to: previousDay(period.to),
    level: t(`level_${c.level}`), scope: t('scopeShown', { scope }) });
  const town = ownTown(c, state.account);
  $('db-report').hidden = !town;
  if (town) $('db-report').href = `/api/v1/kpi/report?${query({ town, month: c.month })}`;
  $('db-csv').href = `/api/v1/kpi?${query({ group: c.level, from: period.from, to: period.to, area: c.area, f: 'csv' })}`;
  $('db-body').hidden = false;
  const main = kpi(c.level, period, c.area, signal).then((report) => {
    if (signal.aborted) return report;  // a later choice is on its way: draw nothing of this one
    showTotals(report.totals);
    showRanking(report, c, period);
    return report;
  });
  const heat = showHeatMap(c, period, signal);
  // The ranking first: the heavier evaluations (grids, one per month) start once it is drawn, not against it.
  const after = main.catch(() => null);
  const hot = after.then(() => (c.level === 'grid' ? main : kpi('grid', period, c.area, signal))).then((grids) => {
    if (!signal.aborted) showHot(grids);
  });
  const trends = after.then(() => showTrends(c, period, signal));
  const parts = [main, hot, trends, heat];
  const results = await Promise.allSettled(parts);
  if (signal.aborted) return;
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) fail(failed.reason);
  body.loaded = String(state.loads);
  if (!performance.getEntriesByName('db-loaded').length) performance.mark('db-loaded');  // bench/dashboard.py
}

function setAccount(account, reason) {
  state.account = account;
  if (!account && reason === 'expired') return;  // keep the figures on screen until the next login
  $('db-anon').hidden = Boolean(account);
  if (!account) {
    $('db-body').hidden = true;
    return;
  }
  fillForm(account);
  load();
}

async function start() {
  const [lon, lat] = body.center.split(',').map(Number);
  state.table = new RankingTable($('db-ranking'));
  // MapLibre (1 MB) is imported on its own, so the figures need not wait for it to be fetched and compiled.
  state.mapReady = import('./heat.js').then((heat) => {
    state.heat = heat;
    return heat.createHeatMap($('db-map'), { center: [lon, lat], zoom: Number(body.zoom), baseMapUrl: body.baseMap });
  });
  state.mapReady.then((map) => { state.map = map; });
  $('db-kind').addEventListener('change', showKindFields);
  $('db-controls').addEventListener('submit', (event) => { event.preventDefault(); load(); });
  showKindFields();
  await initShell({ onAccount: setAccount });  // calls setAccount with the earlier session's account, or null
  onLangChange(() => { if (state.account) load(); });
  window.glDashboard = state;  // for the browser tests and the benchmark (read-only use)
  body.ready = 'shell';
}

start();
