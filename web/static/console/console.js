/* The dispatcher console: wires the shell (login, navigation, language), the map, the case list, the inbox,
 * the live feed, the details panel, "what is here" / "new case here" and the keyboard shortcuts. */

import './strings.js';
import { initShell, notify } from '/static/common/shell.js';
import { onLangChange, t } from '/static/common/i18n.js';
import { CaseList, Inbox, LiveFeed } from './cases.js';
import { Details } from './details.js';
import { describeHere, newCaseForm } from './here.js';
import { installShortcuts } from './keys.js';
import { button, el } from './dom.js';

const body = document.body.dataset;
const $ = (id) => document.getElementById(id);
const REPORTERS = ['admin', 'dispatcher', 'inspector', 'grid_chief', 'partner'];
// The map module (MapLibre, ~1 MB of script: fetched at once by the page's modulepreload) is evaluated only once the
// session check, the list's and the inbox's requests are out: its evaluation holds the main thread ~0.5 s.
let gl = null;  // the map module once loaded (set before state.map)
const state = { map: null, account: null, here: null, timings: [], lastEvent: null };

function row(dl, label, value) {
  if (value === undefined || value === null || value === '') return;
  dl.append(el('dt', null, label), el('dd', null, value));
}

function featureBox(feature) {
  const p = feature.properties;
  const box = el('section', 'cl-here-item');
  box.dataset.layer = feature.layer;
  box.append(el('h3', null, `${t('layer_' + feature.layer)}${p.name ? ' · ' + p.name : ''}`));
  const dl = el('dl');
  if (p.count !== undefined) {
    row(dl, t('count'), p.count);
    box.append(dl, el('p', 'cl-hint', t('zoomIn')));
    return box;
  }
  row(dl, t('code'), p.code || p.case_no);
  row(dl, t('kind'), feature.layer === 'special-grids' ? p.kind : '');
  row(dl, t('klass'), p.class_code);
  row(dl, t('category'), p.category_code);
  row(dl, t('owner'), p.owner_key);
  row(dl, t('state'), p.state ? t('state_' + p.state) : '');
  row(dl, t('status'), p.status);
  box.append(dl);
  if (feature.layer === 'cases' && p.id) box.append(button(t('openCase'), () => state.details.open(Number(p.id))));
  return box;
}

/** "What is here": every feature drawn under the click (each grid level included), then the server's answer,
 * and "new case here" for the roles that report. */
function showHere(point, lngLat) {
  const features = gl.featuresAt(state.map, point);
  state.here = { point, lngLat };
  const target = $('cl-here-body');
  target.replaceChildren(...features.map(featureBox));
  $('cl-here').hidden = false;
  describeHere(target, lngLat, Boolean(state.account));
  if (state.account && REPORTERS.includes(state.account.role)) {
    const newCase = button(t('newCaseHere'), () => {
      newCase.remove();
      newCaseForm(target, lngLat, (created) => {
        state.details.open(created.id);
        refreshAll();
      });
    }, 'gl-button gl-primary');
    newCase.id = 'cl-new-here';
    target.append(newCase);
  }
}

let refreshTimer = null;
function refreshAll() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (!state.account) return;
    state.list.refresh();
    state.inbox.refresh();
    if (state.map) gl.refreshCases(state.map);
  }, 150);
}

function onEvent(event) {
  state.lastEvent = event;
  if (event.kind === 'report' && event.grade === 'A') {
    const alert = $('cl-alert');
    alert.textContent = t('newA', { no: `#${event.case_id}`, grid: event.grid_code || '' });
    alert.hidden = false;
    alert.dataset.caseId = event.case_id;
  }
  state.details.refreshIf(event.case_id);
  const seen = Number(body.listVersion || 0);
  refreshAll();
  waitForList(seen).then(() => state.timings.push({ event: event.id, ms: performance.now() - event.received }));
}

function waitForList(seen) {
  return new Promise((resolve) => {
    const check = () => (Number(body.listVersion || 0) > seen ? resolve() : setTimeout(check, 20));
    check();
  });
}

function setAccount(account, reason) {
  state.account = account;
  if (!account && reason === 'expired') {  // keep what is on screen (and the forms) until the next login
    state.feed.stop();
    return;
  }
  if (state.map) gl.setSignedIn(state.map, account || null);
  $('cl-anon-hint').hidden = Boolean(account);
  $('cl-side-anon').hidden = Boolean(account);
  $('cl-work').hidden = !account;
  if (!account) {
    state.feed.stop();
    state.details.close();
    $('cl-list').replaceChildren();
    $('cl-inbox').replaceChildren();
    return;
  }
  state.list.refresh();
  state.inbox.refresh();
  state.feed.start();
}

function selectTab(which) {
  const list = which === 'list';
  $('cl-tab-list').setAttribute('aria-selected', String(list));
  $('cl-tab-inbox').setAttribute('aria-selected', String(!list));
  $('cl-list-pane').hidden = !list;
  $('cl-inbox-pane').hidden = list;
}

function showOnMap(c, component) {
  if (!state.map) return;  // still loading
  const [lon, lat] = c.location.coordinates;
  state.map.flyTo({ center: [lon, lat], zoom: Math.max(state.map.getZoom(), 17) });
  gl.selectComponent(state.map, component.code);
}

function setupSide() {
  const open = (id) => state.details.open(id);
  state.list = new CaseList({ form: $('cl-filter'), list: $('cl-list'), more: $('cl-more'), note: $('cl-list-note'),
    onOpen: open });
  state.inbox = new Inbox({ list: $('cl-inbox'), count: $('cl-inbox-count'), onOpen: open });
  state.details = new Details({ panel: $('cl-details'), onChanged: refreshAll, onShowOnMap: showOnMap });
  state.feed = new LiveFeed({ onEvent, status: (s) => { $('cl-live').dataset.state = s; $('cl-live').textContent = t('live_' + s); } });
  $('cl-tab-list').addEventListener('click', () => selectTab('list'));
  $('cl-tab-inbox').addEventListener('click', () => selectTab('inbox'));
  $('cl-alert').addEventListener('click', () => {
    if ($('cl-alert').dataset.caseId) state.details.open(Number($('cl-alert').dataset.caseId));
    $('cl-alert').hidden = true;
  });
}

function setupMap() {
  const baseBox = $('cl-base-online');
  const baseError = $('cl-base-error');
  baseBox.addEventListener('change', () => {
    baseError.hidden = true;
    gl.setBaseMap(state.map, baseBox.checked, () => {
      baseBox.checked = false;
      baseError.textContent = t('baseFailed');
      baseError.hidden = false;
      notify(t('baseFailed'), 'warn');
    });
  });
  state.map.on('click', (event) => showHere(event.point, event.lngLat));
  $('cl-here-close').addEventListener('click', () => { $('cl-here').hidden = true; });
}

async function start() {
  const [lon, lat] = body.center.split(',').map(Number);
  setupSide();
  let started = false;  // the side panel works before the map has loaded: the list does not wait for it
  const account = await initShell({ onAccount: (a, why) => { if (started) setAccount(a, why); else state.account = a; } });
  started = true;
  setAccount(account);  // the list's and the inbox's requests leave here
  performance.mark('gl-side-sent');  // bench/console.py's trace
  gl = await import('./map.js');
  performance.mark('gl-map-module');  // MapLibre's script evaluated
  gl.maplibregl.prewarm();  // its worker (which fetches and decodes the tiles) starts now, not once the map has its style
  const createdFor = state.account;  // the layers that need an account are in the map's first style
  state.map = await gl.createMap($('cl-map'), { center: [lon, lat], zoom: Number(body.zoom), baseMapUrl: body.baseMap,
    account: createdFor || null });
  performance.mark('gl-map-load');  // its style loaded: the tiles are on their way
  state.map.once('idle', () => performance.mark('gl-map-idle'));  // first tiles drawn (bench/console.py)
  setupMap();
  if (state.account !== createdFor) gl.setSignedIn(state.map, state.account || null);  // a login meanwhile
  const linked = Number(new URLSearchParams(window.location.search).get('case'));
  if (account && Number.isInteger(linked) && linked > 0) state.details.open(linked);  // /console?case=ID
  installShortcuts(state, { selectTab, showHere, refreshAll });
  onLangChange(() => {
    if (state.here && !$('cl-here').hidden) showHere(state.here.point, state.here.lngLat);
    if (state.account) { state.list.refresh(); state.inbox.refresh(); }
    if (state.details.openId) state.details.open(state.details.openId);
  });
  window.glConsole = state;  // for the browser tests and the benchmark (read-only use)
  body.ready = 'map';
  document.dispatchEvent(new CustomEvent('console:ready', { detail: state }));
}

start();
