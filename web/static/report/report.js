/* The inspector's phone page (/report): locate me (accuracy shown), pick a category from the searchable tree,
 * take or attach photos (a photo's GPS position offered as the location), describe, submit — into the outgoing
 * queue (queue.js: IndexedDB, retried with the same idempotency key until the server confirms the case) — and
 * the inspector's own recent reports with their state. */

import './strings.js';
import { api, currentAccount } from '/static/common/api.js';
import { formatTime, lang, onLangChange, t } from '/static/common/i18n.js';
import { initShell, notify, openLogin } from '/static/common/shell.js';
import { Sender, items, postForm, remove, resetSession } from './queue.js';

const MAX_PHOTOS = 4;
const MAX_PHOTO_BYTES = 8 * 1024 * 1024;
const CATEGORY_CACHE = 'gridlink.categories';
const $ = (id) => document.getElementById(id);

const state = { categories: [], byCode: new Map(), photos: [], queue: [], mine: [] };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function categoryName(code) {
  const node = state.byCode.get(code);
  if (!node) return code;
  return lang() === 'en' ? node.name_en : node.name_zh;
}

function showError(message) {
  $('rp-error').textContent = message || '';
  $('rp-error').hidden = !message;
}

/* --- where ---------------------------------------------------------------------------------------------- */

function setLocation(lon, lat, accuracy) {
  $('rp-lon').value = lon.toFixed(6);
  $('rp-lat').value = lat.toFixed(6);
  $('rp-accuracy').textContent = accuracy === null ? '' : t('accuracy', { m: Math.round(accuracy) });
  lookUpGrid(lon, lat);
}

async function lookUpGrid(lon, lat) {
  $('rp-grid').textContent = '';
  try {
    const reply = await api(`locate?lon=${encodeURIComponent(lon)}&lat=${encodeURIComponent(lat)}`);
    const { grid, community, town } = reply.body;
    $('rp-grid').textContent = t('gridHere', { name: [town, community, grid].filter(Boolean).map((g) => g.name).join(' / ') });
  } catch (err) {
    if (err.status === 422) $('rp-grid').textContent = t('outsideCoverage');  // offline: nothing to say
  }
}

function locateMe() {
  if (!navigator.geolocation) {
    $('rp-accuracy').textContent = t('locateFailed', { reason: 'geolocation' });
    return;
  }
  $('rp-accuracy').textContent = t('locating');
  navigator.geolocation.getCurrentPosition(
    (pos) => setLocation(pos.coords.longitude, pos.coords.latitude, pos.coords.accuracy),
    (err) => { $('rp-accuracy').textContent = t('locateFailed', { reason: err.message || err.code }); },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 0 },
  );
}

/* --- category ------------------------------------------------------------------------------------------- */

function setCategories(list) {
  state.categories = list;
  state.byCode = new Map(list.map((n) => [n.code, n]));
  renderCategories();
  renderQueue();
  renderMine();
}

async function loadCategories() {
  try {
    const cached = JSON.parse(window.localStorage.getItem(CATEGORY_CACHE) || 'null');
    if (cached) setCategories(cached);
  } catch (e) { /* no cache */ }
  try {
    const reply = await api('categories');
    setCategories(reply.body.categories);
    try { window.localStorage.setItem(CATEGORY_CACHE, JSON.stringify(reply.body.categories)); } catch (e) { /* full */ }
  } catch (err) {
    if (!state.categories.length) $('rp-cat-chosen').textContent = t('categoryOffline');
  }
}

function path(node) {
  const names = [];
  for (let p = state.byCode.get(node.parent); p; p = state.byCode.get(p.parent)) names.unshift(categoryName(p.code));
  return names.join(' › ');
}

function renderCategories() {
  const wanted = $('rp-cat-search').value.trim().toLowerCase();
  const chosen = $('rp-category').value;
  const leaves = state.categories.filter((n) => n.leaf && (!wanted || n.code.toLowerCase().includes(wanted)
    || n.name_zh.toLowerCase().includes(wanted) || n.name_en.toLowerCase().includes(wanted)));
  const list = $('rp-cat-list');
  list.replaceChildren();
  if (!wanted && !chosen) return;  // nothing typed: the list stays short on a small screen
  for (const node of leaves.slice(0, 40)) {
    const button = el('button', { type: 'button', role: 'option', 'aria-selected': String(node.code === chosen),
      dataset: { code: node.code }, onclick: () => choose(node.code) },
    el('span', { className: 'rp-path' }, path(node)), `${categoryName(node.code)} · ${node.grade}`);
    list.append(el('li', {}, button));
  }
  if (!leaves.length) list.append(el('li', { className: 'rp-hint' }, t('categoryNone')));
  renderChosen();
}

function renderChosen() {
  const node = state.byCode.get($('rp-category').value);
  $('rp-cat-chosen').textContent = node ? t('categoryChosen', { name: categoryName(node.code), grade: node.grade }) : '';
}

function choose(code) {
  $('rp-category').value = code;
  $('rp-cat-search').value = '';
  $('rp-cat-list').replaceChildren();
  renderChosen();
}

/* --- photos --------------------------------------------------------------------------------------------- */

async function inspect(photo) {
  if (!navigator.onLine || !currentAccount()) return;
  const form = new FormData();
  form.append('photo', photo.blob, photo.name);
  try {
    const { status, body } = await postForm('/api/v1/photos/inspect', form);
    if (status === 200 && body.gps) {
      photo.gps = body.gps;
      renderPhotos();
    } else if (status >= 400 && body) {
      photo.problem = body.detail || body.title;
      renderPhotos();
    }
  } catch (e) { /* offline: no location offered */ }
}

function addPhotos(files) {
  showError('');
  for (const file of files) {
    if (state.photos.length >= MAX_PHOTOS) { showError(t('photoTooMany')); break; }
    if (file.size > MAX_PHOTO_BYTES) { showError(t('photoTooBig', { name: file.name })); continue; }
    const photo = { name: file.name || 'photo.jpg', blob: file, url: URL.createObjectURL(file), gps: null, problem: null };
    state.photos.push(photo);
    inspect(photo);
  }
  $('rp-photo').value = '';
  renderPhotos();
}

function renderPhotos() {
  $('rp-photos').replaceChildren(...state.photos.map((photo, index) => el('li', {},
    el('img', { src: photo.url, alt: photo.name }),
    photo.problem ? el('span', { className: 'gl-error' }, photo.problem) : null,
    photo.gps ? el('button', { type: 'button', className: 'gl-button', dataset: { use: String(index) },
      onclick: () => setLocation(photo.gps.lon, photo.gps.lat, null) }, t('usePhotoLocation')) : null,
    el('button', { type: 'button', className: 'gl-button', onclick: () => {
      URL.revokeObjectURL(photo.url);
      state.photos.splice(index, 1);
      renderPhotos();
    } }, t('photoRemove')))));
}

/* --- submit and the queue ------------------------------------------------------------------------------- */

function readReport() {
  const lon = Number.parseFloat($('rp-lon').value);
  const lat = Number.parseFloat($('rp-lat').value);
  if (!Number.isFinite(lon) || !Number.isFinite(lat)) return { error: t('needLocation') };
  const category = $('rp-category').value;
  if (!category) return { error: t('needCategory') };
  const report = { category, location: { type: 'Point', coordinates: [lon, lat] } };
  const description = $('rp-description').value.trim();
  if (description) report.description = description;
  return { report };
}

async function submit(event) {
  event.preventDefault();
  const { report, error } = readReport();
  showError(error);
  if (error) return;
  $('rp-submit').disabled = true;
  try {
    await sender.queue(report, state.photos.map((p) => ({ name: p.name, blob: p.blob })));
    for (const photo of state.photos) URL.revokeObjectURL(photo.url);
    state.photos = [];
    $('rp-description').value = '';
    $('rp-category').value = '';
    renderPhotos();
    renderChosen();
    notify(t('queued'));
    sender.flush();
  } finally {
    $('rp-submit').disabled = false;
  }
}

function queueLine(item) {
  let status = t('queueWaiting', { n: item.attempts });
  if (item.state === 'sending') status = t('queueSending');
  if (item.state === 'failed') status = t('queueFailed', { reason: item.error });
  const remove = el('button', { type: 'button', className: 'gl-button', onclick: async () => {
    await removeItem(item.key);
  } }, t('queueDelete'));
  return el('li', { dataset: { key: item.key, state: item.state } },
    el('span', {}, categoryName(item.report.category)),
    el('span', { className: item.state === 'failed' ? 'rp-failed' : 'rp-state' }, status),
    item.state === 'failed' ? remove : null,
    el('span', { className: 'rp-meta' }, formatTime(item.created)));
}

async function removeItem(key) {
  await remove(key);
  state.queue = await items();
  renderQueue();
}

function renderQueue() {
  const list = $('rp-queue');
  list.replaceChildren(...state.queue.map(queueLine));
  if (!state.queue.length) list.append(el('li', { className: 'rp-hint' }, t('queueEmpty')));
  list.dataset.count = String(state.queue.length);
}

async function loadMine() {
  if (!currentAccount()) { state.mine = []; renderMine(); return; }
  try {
    state.mine = (await api('me/cases?limit=10')).body.cases;
    renderMine();
  } catch (e) { /* offline: keep what is shown */ }
}

function renderMine() {
  const list = $('rp-mine');
  list.replaceChildren(...state.mine.map((c) => el('li', { dataset: { id: String(c.id) } },
    el('strong', {}, c.case_no), el('span', {}, categoryName(c.category)),
    el('span', { className: 'rp-state' }, t(`state_${c.state}`)),
    el('span', { className: 'rp-meta' }, `${t('mineUpdated', { at: formatTime(c.updated_at) })} · ${
      t('minePhotos', { n: c.photos })} · ${c.grid.name}`))));
  if (!state.mine.length) list.append(el('li', { className: 'rp-hint' }, t('mineEmpty')));
}

function renderNet() {
  const offline = !navigator.onLine;
  $('rp-net').textContent = offline ? t('offline') : t('online');
  $('rp-net').dataset.offline = offline ? '1' : '0';
}

const sender = new Sender({
  onChange: (queue) => { state.queue = queue; renderQueue(); },
  onSent: (item, reply) => { notify(t('sent', { no: reply.case_no })); loadMine(); },
  onUnauthorized: () => { if (currentAccount()) openLogin(t('sessionExpired')); },
});

async function main() {
  $('rp-locate').addEventListener('click', locateMe);
  $('rp-lon').addEventListener('change', () => lookUpGrid($('rp-lon').value, $('rp-lat').value));
  $('rp-cat-search').addEventListener('input', renderCategories);
  $('rp-photo').addEventListener('change', (e) => addPhotos(Array.from(e.target.files || [])));
  $('rp-form').addEventListener('submit', submit);
  $('rp-form').addEventListener('gridlink:restored', renderChosen);
  window.addEventListener('online', renderNet);
  window.addEventListener('offline', renderNet);
  onLangChange(() => { renderCategories(); renderQueue(); renderMine(); renderNet(); });
  renderNet();
  renderPhotos();
  state.queue = await items();
  renderQueue();
  await initShell({ onAccount: (account) => {
    resetSession();
    $('rp-login-hint').hidden = Boolean(account);
    if (account) { sender.flush(); }
    loadMine();
  } });
  await loadCategories();
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/report-sw.js', { scope: '/report' }).catch(() => {});
  document.body.dataset.ready = 'report';
}

window.glReport = { sender, items, state };
main();
