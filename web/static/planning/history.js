/* The versions browser (GET /api/v1/grids/{code}/history: every shape a grid had, when and by whom; a version
 * clicked is drawn on the map) and the grid-file import (POST /api/v1/grids/imports: the repair and topology
 * report, its problems drawn on the map; stored as a draft plan, or only checked). */

import { api } from '/static/common/api.js';
import { notify } from '/static/common/shell.js';
import { formatTime, t } from '/static/common/i18n.js';
import { button, el } from '/static/console/dom.js';
import { bounds, setData } from './layers.js';

const $ = (id) => document.getElementById(id);
const MEDIA = { geojson: 'application/geo+json', json: 'application/geo+json', gpkg: 'application/geopackage+sqlite3',
  fgb: 'application/flatgeobuf', zip: 'application/zip' };

function fit(map, items) {
  const box = bounds(items);
  if (box) map.fitBounds(box, { padding: 60, maxZoom: 17, duration: 0 });
}

/** Show the versions of grid `code` in the side panel. */
export async function showHistory(map, code) {
  const target = $('pl-history');
  target.replaceChildren(el('p', 'pl-hint', t('loading')));
  setData(map, 'pl-history', null);
  let history;
  try {
    history = (await api(`grids/${code}/history`)).body;
  } catch (err) {
    target.replaceChildren(el('p', 'gl-error', err.message));
    return;
  }
  const head = el('p', 'pl-state', `${history.code} · ${history.name}${history.retired_at ? ' · ' + t('retired') : ''}`);
  const list = el('ol', 'pl-versions');
  list.id = 'pl-version-list';
  for (const v of history.versions) {
    const li = el('li');
    li.dataset.version = v.version_id;
    const span = `${formatTime(v.valid_from)} – ${v.valid_to ? formatTime(v.valid_to) : t('current')}`;
    li.append(button(span, () => {
      setData(map, 'pl-history', [{ type: 'Feature', geometry: v.geometry, properties: {} }]);
      fit(map, [v.geometry]);
    }, 'pl-link'));
    li.append(el('span', 'pl-hint', ` ${v.name || ''} · ${v.author || ''}${v.plan ? ' · ' + t('planNo', { id: v.plan }) : ''}`
      + `${v.note ? ' · ' + v.note : ''}`));
    list.append(li);
  }
  target.replaceChildren(head, list);
}

function reportView(map, report) {
  const box = el('div', 'pl-report');
  box.id = 'pl-import-result';
  box.dataset.ok = String(Boolean(report.ok));
  box.append(el('p', report.ok ? 'pl-ok' : 'pl-warn', t('importSummary', { file: report.file || '', grids: report.grids,
    repairs: report.repairs.length, problems: report.problems.length })));
  const items = [...report.problems.map((p) => ({ ...p, problem: true })), ...report.repairs];
  const list = el('ol');
  for (const f of items.slice(0, 300)) {
    const li = el('li', f.problem ? 'pl-problem' : '');
    li.append(button(`${f.problem ? t('problem_' + f.kind) : t('repair', { kind: f.kind })} · ${(f.codes || []).join(', ')}`
      + ` · ${f.area_m2} m²`, () => f.location && map.flyTo({ center: f.location, zoom: 16 }), 'pl-link'));
    if (f.action) li.append(el('span', 'pl-hint', ` ${f.action}`));
    list.append(li);
  }
  box.append(list);
  const shapes = report.problems.filter((p) => p.geometry).map((p) => (
    { type: 'Feature', geometry: p.geometry, properties: { kind: p.kind } }));
  setData(map, 'pl-problems', shapes);
  if (shapes.length) fit(map, shapes);
  return box;
}

/** Wire the import form; `onDraft(planId)` opens a plan the file was stored as. */
export function setupImport(map, onDraft) {
  $('pl-import').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData($('pl-import'));
    const file = form.get('file');
    if (!file || !file.name) return;
    const ext = file.name.split('.').pop().toLowerCase();
    if (!MEDIA[ext]) { notify(t('importType'), 'warn'); return; }
    const query = new URLSearchParams({ level: form.get('level'), store: form.get('store'),
      code_field: form.get('code_field'), name_field: form.get('name_field'),
      filename: file.name.replace(/[^\w\-. ]/g, '_').slice(0, 100) });
    const target = $('pl-import-report');
    target.replaceChildren(el('p', 'pl-hint', t('loading')));
    try {
      const reply = (await api(`grids/imports?${query}`, { method: 'POST', body: file,
        headers: { 'Content-Type': MEDIA[ext] } })).body;
      target.replaceChildren(reportView(map, reply));
      if (reply.plan) onDraft(reply.plan);
    } catch (err) {
      const report = err.problem && err.problem.report;
      target.replaceChildren(el('p', 'gl-error', err.message), ...(report ? [reportView(map, report)] : []));
    }
  });
}
