/* The asset owners' registry page (/registry, issue 21 item 1): the shell (login, navigation, language), the
 * table of components (filters, sort, keyset pages, export), the map (the components, the page's rows, the
 * selection), the component panel (attributes, history, edits, move) and the survey import.
 *
 * Who sees what is the server's (spatial/access/scope.py): an owner lists only its own components and edits
 * them; admins list and edit every owner's; any other account (a viewer) reads. The page mirrors it: edit,
 * import and export controls only for the accounts the server lets act, the owner's filter fixed to its key. */

import './strings.js';
import { initShell } from '/static/common/shell.js';
import { onLangChange, t } from '/static/common/i18n.js';
import { RegistryMap } from './map.js';
import { RegistryTable } from './table.js';
import { ComponentPanel } from './panel.js';
import { SurveyImport } from './importer.js';

const body = document.body.dataset;
const $ = (id) => document.getElementById(id);
const state = { account: null, map: null, table: null, panel: null, importer: null };

const isOwner = () => state.account && state.account.role === 'owner';
const isAdmin = () => state.account && state.account.role === 'admin';

/** May the signed-in account edit a component of `ownerKey`? (scope.check_edit_component, mirrored) */
function canEdit(ownerKey) {
  return isAdmin() || (isOwner() && state.account.scope === ownerKey);
}

function exportHref() {
  const query = { ...state.table.query(), format: $('rg-export-format').value };
  delete query.sort;  // an export is in code order
  return `/api/v1/components/export?${new URLSearchParams(query)}`;
}

function updateExport() { $('rg-export').href = exportHref(); }

async function select(code, feature = null, fly = true) {
  state.table.mark(code);
  if (feature) state.map.select(feature);
  try {
    const full = await state.panel.open(code);
    state.map.map.resize();  // the panel took its place beside the map: fly to the centre of what is left
    state.map.select(full, fly);
  } catch (err) {
    state.table.note.textContent = err.message;
  }
}

function setAccount(account, reason) {
  state.account = account;
  if (!account && reason === 'expired') return;  // keep the page; the login box is open
  $('rg-anon').hidden = Boolean(account);
  $('rg-work').hidden = !account;
  state.map.stopMove();
  if (!account) {
    state.panel.close();
    $('rg-rows').replaceChildren();
    state.map.setRows([]);
    return;
  }
  const owner = isOwner();
  const acts = owner || isAdmin();
  $('rg-owner-field').hidden = owner;  // an owner's list is its own; others may narrow it to one owner
  $('rg-export').hidden = !acts;
  $('rg-export-format').hidden = !acts;
  $('rg-import-open').hidden = !acts;
  $('rg-scope').textContent = owner ? t('ownOnly', { owner: account.scope }) : acts ? '' : t('readOnly');
  state.map.setOwner(owner ? account.scope : null);
  state.table.reload().then(updateExport);
}

function setup() {
  state.table = new RegistryTable({
    form: $('rg-filter'), rows: $('rg-rows'), prev: $('rg-prev'), next: $('rg-next'), pageNo: $('rg-page-no'),
    note: $('rg-note'), limit: $('rg-limit'),
    onSelect: (code, feature) => select(code, feature),
    onRows: (features) => { state.map.setRows(features); updateExport(); },
  });
  state.panel = new ComponentPanel({
    panel: $('rg-panel'), map: state.map, canEdit,
    onChanged: (feature) => { state.table.refresh(); state.map.refresh(); state.map.select(feature); },
    onClose: () => { state.table.mark(null); state.map.select(null); },
  });
  state.importer = new SurveyImport({ dialog: $('rg-import'), onStored: () => { state.table.refresh(); state.map.refresh(); } });
  $('rg-import-open').addEventListener('click', () => state.importer.open(isOwner() ? state.account.scope
    : (new FormData($('rg-filter')).get('owner') || ''), isOwner()));
  $('rg-export-format').addEventListener('change', updateExport);
  $('rg-filter').addEventListener('input', updateExport);
  state.map.map.on('click', (event) => {
    if (state.map.moving || !state.account) return;
    const code = state.map.codeAt(event.point);
    if (code) select(code, state.table.find(code), false);
  });
  state.map.map.on('mousemove', (event) => {
    if (state.map.moving) return;
    state.map.map.getCanvas().style.cursor = state.map.codeAt(event.point) ? 'pointer' : '';
  });
}

async function start() {
  const [lon, lat] = body.center.split(',').map(Number);
  const mapReady = new RegistryMap($('rg-map'), { center: [lon, lat], zoom: Number(body.zoom), baseMapUrl: body.baseMap }).ready;
  const accountReady = initShell({ onAccount: (a, why) => { if (state.table) setAccount(a, why); else state.account = a; } });
  state.map = await mapReady;
  setup();
  setAccount(await accountReady);
  onLangChange(() => {
    if (!state.account) return;
    setAccount(state.account);
    if (state.panel.code) state.panel.render();
  });
  window.glRegistry = state;  // for the browser tests (read-only use)
  body.ready = 'map';
}

start();
