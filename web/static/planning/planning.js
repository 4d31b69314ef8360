/* The planner's grid editor (/planning, issue 21 item 2): wires the shell, the console's map with the page's
 * layers (layers.js), the area and date pickers, the plan panel (plan.js), the versions browser and the import
 * (history.js), and the info panel.
 *
 * Grids come from the OGC collections (towns / communities / grids) with `bbox` and, for a past date,
 * `datetime`: the shapes valid then. Admins and planners edit (a planner's towns are those of its scope; the
 * server refuses anything outside it); every other reader browses grids, versions and past dates only. */

import './strings.js';
import { api } from '/static/common/api.js';
import { initShell, notify } from '/static/common/shell.js';
import { onLangChange, t } from '/static/common/i18n.js';
import { createMap } from '/static/console/map.js';
import { el } from '/static/console/dom.js';
import { Drawing, addPlanningLayers, bounds, selectGrid, setData } from './layers.js';
import { PlanPanel } from './plan.js';
import { setupImport, showHistory } from './history.js';

const body = document.body.dataset;
const $ = (id) => document.getElementById(id);
const EDITORS = ['admin', 'planner'];
const COLLECTIONS = { 2: 'towns', 3: 'communities', 4: 'grids' };
const state = { map: null, account: null, at: null, towns: [], communities: [], grids: null, selected: null };

const covers = (scope, code) => scope === '*' || code.startsWith(scope) || scope.startsWith(code);
const level = () => Number($('pl-level').value);
const editable = () => Boolean(state.account && EDITORS.includes(state.account.role) && !state.at);

function options(select, items, first) {
  select.replaceChildren(...(first ? [first] : []), ...items.map((f) => {
    const o = el('option', null, `${f.properties.name} (${f.properties.code})`);
    o.value = f.properties.code;
    return o;
  }));
}

let townsAsked = 0;
async function loadTowns() {
  const asked = ++townsAsked;
  const all = (await api('areas?level=2')).body.features;
  if (asked !== townsAsked) return;  // a later login asked again: its answer counts
  const scope = state.account && state.account.role === 'planner' ? state.account.scope : '*';
  state.towns = all.filter((f) => covers(scope, f.properties.code));
  options($('pl-town'), state.towns);
  const mine = state.account && state.account.scope !== '*' ? state.account.scope : null;  // a viewer's too
  const keep = state.towns.find((f) => mine && covers(mine, f.properties.code)) || state.towns[0];
  if (keep) $('pl-town').value = keep.properties.code;
  await loadCommunities();
}

async function loadCommunities() {
  const town = state.towns.find((f) => f.properties.code === $('pl-town').value);
  if (!town) return;
  const [[w, s], [e, n]] = bounds([town]);
  const all = (await api(`areas?level=3&bbox=${w},${s},${e},${n}`)).body.features;
  state.communities = all.filter((f) => f.properties.code.startsWith(town.properties.code));
  const first = el('option', null, t('wholeTown'));
  first.value = '';
  options($('pl-community'), state.communities, first);
  await loadGrids(true);
}

function area() {
  const code = $('pl-community').value || $('pl-town').value;
  return [...state.communities, ...state.towns].find((f) => f.properties.code === code);
}

let gridsAsked = 0;
/** The grids of the chosen level in the chosen area (its siblings' level: towns in view for level 2), now or
 * as of the chosen date; `fit` moves the map to the area. */
async function loadGrids(fit = false) {
  const where = area();
  if (!where || !state.map) return;
  const box = bounds([where]);
  const lvl = level();
  const query = new URLSearchParams({ f: 'json', limit: '5000', bbox: box.flat().join(',') });
  if (state.at) query.set('datetime', state.at);
  $('pl-area-note').textContent = t('loading');
  const asked = ++gridsAsked;
  try {
    const reply = (await api(`/ogc/collections/${COLLECTIONS[lvl]}/items?${query}`,
      { headers: { Accept: 'application/geo+json' } })).body;
    if (asked !== gridsAsked) return;  // the area, level or date changed meanwhile
    const prefix = lvl === 2 ? '' : (lvl === 3 ? $('pl-town').value : where.properties.code);
    state.grids = reply.features.filter((f) => String(f.properties.code).startsWith(prefix));
    setData(state.map, 'pl-grids', state.grids);
    if (fit) state.map.fitBounds(box, { padding: 40, duration: 0 });
    $('pl-area-note').textContent = t('gridsShown', { n: state.grids.length, level: t('level' + lvl) })
      + (state.at ? ` · ${t('asOfNote', { date: $('pl-date-input').value })}` : '');
    body.gridsLoaded = String(Number(body.gridsLoaded || 0) + 1);
  } catch (err) {
    $('pl-area-note').textContent = err.message;
  }
}

function infoRows(rows) {
  const dl = el('dl');
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === '') continue;
    dl.append(el('dt', null, label), el('dd', null, value));
  }
  return dl;
}

function showInfo(title, rows, kind) {
  const target = $('pl-info-body');
  target.replaceChildren(el('h3', null, title), infoRows(rows));
  $('pl-info').dataset.kind = kind;
  $('pl-info').hidden = false;
}

async function showComponent(code) {
  try {
    const f = (await api(`components/${code}`)).body;
    const p = f.properties;
    showInfo(t('component'), [[t('code'), p.code], [t('klass'), p.class_code], [t('name'), p.name],
      [t('grid'), p.grid_code], [t('owner'), p.owner_key], [t('status'), p.status]], 'component');
    $('pl-info').dataset.code = p.code;
    $('pl-info').dataset.grid = p.grid_code || '';
    if (f.geometry) state.map.easeTo({ center: f.geometry.coordinates, zoom: Math.max(state.map.getZoom(), 16), duration: 0 });
  } catch (err) {
    notify(err.message, 'error');
  }
}

function selectCode(code, props) {
  state.selected = code;
  selectGrid(state.map, code);
  state.panel.pick(code);
  showInfo(t('level' + (props.level || level())), [[t('code'), code], [t('name'), props.name],
    [t('parent'), props.parent_code]], 'grid');
  $('pl-info').dataset.code = code;
  showHistory(state.map, code);
}

function onMapClick(event) {
  if (state.drawing.active) return;
  const hit = state.map.queryRenderedFeatures(event.point, { layers: ['pl-moved-points', 'pl-grids-fill'] });
  const moved = hit.find((f) => f.layer.id === 'pl-moved-points');
  if (moved) {
    const p = moved.properties;
    if (p.kind === 'component') showComponent(p.code);
    else showInfo(t('case'), [['ID', p.id], [t('before'), p.before], [t('after'), p.after]], 'case');
    return;
  }
  const grid = hit.find((f) => f.layer.id === 'pl-grids-fill');
  if (grid) selectCode(grid.properties.code, grid.properties);
}

function setAccount(account) {
  state.account = account;
  const may = editable();
  $('pl-anon').hidden = Boolean(account);
  $('pl-readonly').hidden = !account || EDITORS.includes(account.role);
  $('pl-plan-box').hidden = !(account && EDITORS.includes(account.role));
  $('pl-import-box').hidden = !may;
  loadTowns().catch((err) => notify(err.message, 'error'));
  if (account && EDITORS.includes(account.role)) state.panel.list().then(() => state.panel.render(state.panel.plan));
  else state.panel.clear();
}

function drawHint(count, kind) {
  $('pl-draw-bar').hidden = count === null;
  if (count !== null) $('pl-draw-hint').textContent = t(kind === 'polygon' ? 'drawPolygon' : 'drawLine', { n: count });
}

function setupForms() {
  $('pl-level').addEventListener('change', () => loadGrids());
  $('pl-town').addEventListener('change', () => loadCommunities());
  $('pl-community').addEventListener('change', () => loadGrids(true));
  $('pl-date').addEventListener('submit', (event) => {
    event.preventDefault();
    const date = $('pl-date-input').value;
    if (!date) return;
    state.at = new Date(`${date}T23:59:59+08:00`).toISOString();  // the end of that day in Suzhou
    $('pl-banner').textContent = t('pastBanner', { date });
    $('pl-banner').hidden = false;
    state.panel.render(state.panel.plan);
    loadGrids();
  });
  $('pl-date-now').addEventListener('click', () => {
    state.at = null;
    $('pl-banner').hidden = true;
    state.panel.render(state.panel.plan);
    loadGrids();
  });
  $('pl-draw-finish').addEventListener('click', () => state.drawing.finish());
  $('pl-draw-cancel').addEventListener('click', () => state.drawing.cancel());
  $('pl-info-close').addEventListener('click', () => { $('pl-info').hidden = true; });
}

async function start() {
  const [lon, lat] = body.center.split(',').map(Number);
  const mapReady = createMap($('pl-map'), { center: [lon, lat], zoom: Number(body.zoom), baseMapUrl: body.baseMap });
  const account = await initShell({ onAccount: (a) => { if (state.panel) setAccount(a); else state.account = a; } });
  state.map = await mapReady;
  addPlanningLayers(state.map);
  state.drawing = new Drawing(state.map, { onChange: drawHint });
  state.panel = new PlanPanel({
    map: state.map, drawing: state.drawing, level, editable,
    onCommitted: () => loadGrids(), onShowComponent: showComponent,
    onLocate: (x, y) => state.map.flyTo({ center: [x, y], zoom: 16, duration: 0 }),
  });
  state.map.on('click', onMapClick);
  setupForms();
  setupImport(state.map, (id) => state.panel.list(id).then(() => state.panel.open(id)));
  setAccount(account);
  onLangChange(() => {
    state.panel.showFields();
    state.panel.render(state.panel.plan);
    if (state.panel.preview) state.panel.showPreview(state.panel.preview);
  });
  window.glPlanning = state;  // for the browser tests and the benchmark (read-only use)
  body.ready = 'map';
}

start();
