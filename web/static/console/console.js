/* The dispatcher console: wires the shell (login, navigation, language), the map and the side panel. */

import './strings.js';
import { initShell } from '/static/common/shell.js';
import { onLangChange, t } from '/static/common/i18n.js';
import { createMap, featuresAt, setBaseMap, setSignedIn } from './map.js';
import { el } from './dom.js';

const body = document.body.dataset;
const state = { map: null, account: null, here: null };

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
  row(dl, t('kind'), p.kind && p.kind !== 'base' ? p.kind : '');
  row(dl, t('klass'), p.class_code);
  row(dl, t('category'), p.category_code);
  row(dl, t('owner'), p.owner_key);
  row(dl, t('state'), p.state ? t('state_' + p.state) : '');
  row(dl, t('status'), p.status);
  box.append(dl);
  return box;
}

/** The "what is here" panel: every feature drawn under the click, each level of grid included. */
function showHere(point, lngLat) {
  const features = featuresAt(state.map, point);
  state.here = { point, lngLat };
  const target = document.getElementById('cl-here-body');
  target.replaceChildren(...features.map(featureBox));
  document.getElementById('cl-here').hidden = false;
  document.dispatchEvent(new CustomEvent('console:here', { detail: { lngLat, features, target } }));
}

async function start() {
  const [lon, lat] = body.center.split(',').map(Number);
  const mapReady = createMap(document.getElementById('cl-map'),
    { center: [lon, lat], zoom: Number(body.zoom), baseMapUrl: body.baseMap });
  state.account = await initShell({
    onAccount: (account) => {
      state.account = account;
      if (state.map) setSignedIn(state.map, Boolean(account));
      document.getElementById('cl-anon-hint').hidden = Boolean(account);
      document.dispatchEvent(new CustomEvent('console:account', { detail: account }));
    },
  });
  state.map = await mapReady;
  setSignedIn(state.map, Boolean(state.account));
  window.glConsole = state;  // for the browser tests and the benchmark (read-only use)
  const baseBox = document.getElementById('cl-base-online');
  const baseError = document.getElementById('cl-base-error');
  baseBox.addEventListener('change', () => {
    baseError.hidden = true;
    setBaseMap(state.map, baseBox.checked, () => {
      baseBox.checked = false;
      baseError.textContent = t('baseFailed');
      baseError.hidden = false;
    });
  });
  state.map.on('click', (event) => showHere(event.point, event.lngLat));
  document.getElementById('cl-here-close').addEventListener('click', () => {
    document.getElementById('cl-here').hidden = true;
  });
  onLangChange(() => { if (state.here && !document.getElementById('cl-here').hidden) showHere(state.here.point, state.here.lngLat); });
  document.body.dataset.ready = 'map';
  document.dispatchEvent(new CustomEvent('console:ready', { detail: state }));
}

start();
