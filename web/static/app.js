/* gridlink demo map. Plain ES2017 on the vendored Leaflet 1.9.4; no build step, no CDN.
 * Configuration comes from data- attributes on #map. Text from the API is only ever inserted with
 * textContent; the only HTML handed to Leaflet is built from constants below (escaped anyway). */
(function () {
  'use strict';

  const I18N = {
    zh: {
      title: 'gridlink 网格化联动指挥 · 吴中区演示', toggle: 'English', toggleLang: 'en',
      loadFailed: '数据加载失败', layerFailed: '图层加载失败：', loading: '加载中…',
      zoomHint: '放大查看基础网格', clickHelp: '点击地图查询所在网格；点击网格查看详情',
      blank: '空白底图', osm: 'OpenStreetMap 在线底图',
      level1: '区', level2: '镇街', level3: '社区村', level4: '基础网格', special: '专属网格',
      code: '编码', level: '层级', location: '位置', locate: '所在网格', requestFailed: '请求失败',
      stat_districts: '区', stat_towns: '镇街', stat_communities: '社区村', stat_grids: '基础网格',
      stat_special_grids: '专属网格', stat_components: '城市部件', stat_cases: '案件',
      user: '登录名', password: '密码', login: '登录', logout: '退出', loginFailed: '登录名或密码错误',
      signedIn: '已登录',
    },
    en: {
      title: 'gridlink grid command centre · Wuzhong demo', toggle: '中文', toggleLang: 'zh-CN',
      loadFailed: 'failed to load', layerFailed: 'Layer failed to load: ', loading: 'Loading…',
      zoomHint: 'zoom in to see base grids', clickHelp: 'Click the map to find its grids; click a grid for details',
      blank: 'Blank background', osm: 'OpenStreetMap (online)',
      level1: 'District', level2: 'Town / subdistrict', level3: 'Community / village', level4: 'Base grid',
      special: 'Special grid',
      code: 'Code', level: 'Level', location: 'Location', locate: 'Grids here', requestFailed: 'Request failed',
      stat_districts: 'Districts', stat_towns: 'Towns', stat_communities: 'Communities', stat_grids: 'Base grids',
      stat_special_grids: 'Special grids', stat_components: 'Components', stat_cases: 'Cases',
      user: 'Login', password: 'Password', login: 'Log in', logout: 'Log out', loginFailed: 'Wrong login or password',
      signedIn: 'Signed in as',
    },
  };
  const LANG_KEY = 'gridlink.lang';
  const MIN_GRID_ZOOM = 12;
  const STAT_KEYS = ['districts', 'towns', 'communities', 'grids', 'special_grids', 'components', 'cases'];
  const LOCATE_ROWS = [['district', 'level1'], ['town', 'level2'], ['community', 'level3'], ['grid', 'level4']];
  // key = i18n label, CSS swatch class and pane name; z = pane stacking (coarser levels drawn on top).
  const LAYERS = [
    { key: 'level1', level: '1', on: true, bbox: false, z: 450,
      style: { color: '#1f3a5f', weight: 3, fill: false } },
    { key: 'level2', level: '2', on: true, bbox: false, z: 440,
      style: { color: '#3f72af', weight: 1.8, fill: false } },
    { key: 'level3', level: '3', on: false, bbox: false, z: 420,
      style: { color: '#4f8a3c', weight: 1, fillColor: '#4f8a3c', fillOpacity: 0.04 } },
    { key: 'level4', level: '4', on: false, bbox: true, z: 410,
      style: { color: '#6b7280', weight: 0.6, fillColor: '#9ca3af', fillOpacity: 0.05 } },
    { key: 'special', level: 'special', on: false, bbox: true, z: 430,
      style: { color: '#e8730c', weight: 1.6, dashArray: '5 4', fillColor: '#f59e42', fillOpacity: 0.12 } },
  ];

  let lang = readLang();
  let stats = null;
  let statsFailed = false;
  let locateSeq = 0;
  let control = null;
  const layerErrors = new Set();

  function readLang() {
    try { return window.localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh'; } catch (e) { return 'zh'; }
  }
  function t(key) {
    const s = I18N[lang][key];
    return s !== undefined ? s : (I18N.zh[key] !== undefined ? I18N.zh[key] : key);
  }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function escapeHtml(s) {
    return el('span', null, s).innerHTML;  // serialise a text node: & < > escaped
  }
  function popupBox(heading, rows) {
    const box = el('div', 'gl-popup');
    if (heading) box.appendChild(el('h2', null, heading));
    const dl = el('dl');
    for (const [label, value] of rows) {
      dl.appendChild(el('dt', null, label));
      dl.appendChild(el('dd', null, value === null || value === undefined || value === '' ? '—' : value));
    }
    box.appendChild(dl);
    return box;
  }
  function problemBox(res) {
    const body = res && res.body && typeof res.body === 'object' ? res.body : {};
    const box = el('div', 'gl-popup gl-problem');
    box.appendChild(el('h2', null, body.title || (t('requestFailed') + (res ? ' (HTTP ' + res.status + ')' : ''))));
    if (body.detail) box.appendChild(el('p', null, body.detail));
    return box;
  }

  // ---- configuration and map ------------------------------------------------------------------------
  const mapEl = document.getElementById('map');
  const API = (mapEl.dataset.apiBase || '/api/v1').replace(/\/+$/, '');
  const center = (mapEl.dataset.center || '').split(',').map(Number);
  const zoom = Number(mapEl.dataset.zoom);
  const map = L.map(mapEl, {
    center: center.length === 2 && center.every(Number.isFinite) ? center : [31.22, 120.55],
    zoom: Number.isFinite(zoom) ? zoom : 10,
  });
  const blank = L.layerGroup().addTo(map);  // no base tiles by default: the machine may be offline
  const osm = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
    maxZoom: 19, attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
  });

  async function request(path, params, signal) {
    const qs = params ? '?' + new URLSearchParams(params).toString() : '';
    const resp = await fetch(API + path + qs, { headers: { Accept: 'application/json' }, signal: signal });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    return { ok: resp.ok, status: resp.status, body: body };
  }

  // ---- info panel (a Leaflet control so it stacks with the layer control) --------------------------------
  const panel = document.getElementById('panel');
  const Panel = L.Control.extend({
    onAdd: function () {
      L.DomEvent.disableClickPropagation(panel);
      L.DomEvent.disableScrollPropagation(panel);
      return panel;
    },
  });
  new Panel({ position: 'topright' }).addTo(map);

  async function loadStats() {
    try {
      const res = await request('/stats');
      if (!res.ok || !res.body || typeof res.body !== 'object') throw new Error('stats HTTP ' + res.status);
      stats = res.body;
      statsFailed = false;
    } catch (err) {
      statsFailed = true;
      console.warn('gridlink: stats', err);
    }
    renderStats();
  }
  function renderStats() {
    const dl = document.getElementById('stats');
    dl.textContent = '';
    document.getElementById('stats-error').hidden = !statsFailed;
    if (!stats) {
      if (!statsFailed) dl.appendChild(el('dd', 'gl-muted', t('loading')));
      return;
    }
    const fmt = new Intl.NumberFormat(lang === 'en' ? 'en' : 'zh-CN');
    for (const key of STAT_KEYS) {
      if (!(key in stats)) continue;
      const v = stats[key];
      dl.appendChild(el('dt', null, t('stat_' + key)));
      dl.appendChild(el('dd', null, typeof v === 'number' ? fmt.format(v) : (v === null ? '—' : v)));
    }
  }
  function renderLayerErrors() {
    const p = document.getElementById('layer-error');
    p.hidden = layerErrors.size === 0;
    p.textContent = layerErrors.size ? t('layerFailed') + Array.from(layerErrors, t).join(lang === 'en' ? ', ' : '、') : '';
  }

  // ---- overlays from {api}/areas ----------------------------------------------------------------------
  for (const def of LAYERS) {
    map.createPane(def.key).style.zIndex = String(def.z);
    def.layer = L.geoJSON(null, {
      pane: def.key,
      bubblingMouseEvents: false,  // a click on a feature is not a click on the map (no locate)
      style: function () { return def.style; },
      onEachFeature: function (feature, layer) {
        layer.bindPopup(function () {
          const p = feature.properties || {};
          return popupBox(p.name || p.code || '—', [[t('code'), p.code], [t('level'), t(def.key)]]);
        });
      },
    });
    def.layer.on('add', function () { loadLayer(def); updateHint(); });
    def.layer.on('remove', function () {
      if (def.controller) def.controller.abort();
      updateHint();
    });
  }

  async function loadLayer(def) {
    const params = { level: def.level };
    let bounds = null;
    if (def.bbox) {
      if (map.getZoom() < MIN_GRID_ZOOM) {
        if (def.controller) def.controller.abort();
        def.layer.clearLayers();
        def.loadedBounds = null;
        return;
      }
      if (def.loadedBounds && def.loadedBounds.contains(map.getBounds())) return;
      bounds = map.getBounds().pad(0.25);  // a margin so small pans need no refetch
      params.bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
        .map(function (v) { return v.toFixed(5); }).join(',');
    } else if (def.loaded || def.controller) {
      return;  // whole layer loaded once, lazily
    }
    if (def.controller) def.controller.abort();
    const controller = new AbortController();
    def.controller = controller;
    try {
      const res = await request('/areas', params, controller.signal);
      if (!res.ok || !res.body || !Array.isArray(res.body.features)) {
        const b = res.body || {};
        throw new Error((b.title || 'HTTP ' + res.status) + (b.detail ? ': ' + b.detail : ''));
      }
      if (controller.signal.aborted) return;
      def.layer.clearLayers();
      def.layer.addData(res.body);
      def.loaded = true;
      def.loadedBounds = bounds;
      layerErrors.delete(def.key);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      console.warn('gridlink: layer ' + def.key, err);
      layerErrors.add(def.key);
    } finally {
      if (def.controller === controller) def.controller = null;
    }
    renderLayerErrors();
  }

  const hint = document.getElementById('zoom-hint');
  function updateHint() {
    const wanted = LAYERS.some(function (d) { return d.bbox && map.hasLayer(d.layer); });
    hint.hidden = !(wanted && map.getZoom() < MIN_GRID_ZOOM);
  }
  map.on('moveend', function () {
    for (const def of LAYERS) if (def.bbox && map.hasLayer(def.layer)) loadLayer(def);
    updateHint();
  });

  function buildControl() {
    if (control) control.remove();
    const base = {};
    base[escapeHtml(t('blank'))] = blank;
    base[escapeHtml(t('osm'))] = osm;
    const overlays = {};
    for (const def of LAYERS) {
      overlays['<span class="gl-swatch gl-sw-' + def.key + '"></span>' + escapeHtml(t(def.key))] = def.layer;
    }
    control = L.control.layers(base, overlays, { position: 'topright', collapsed: window.innerWidth < 700 });
    control.addTo(map);
  }

  // ---- click on the map (not on a feature): {api}/locate ------------------------------------------------
  function gridText(g) {
    if (!g || typeof g !== 'object' || !(g.name || g.code)) return null;
    return (g.name || '') + (g.code ? ' (' + g.code + ')' : '');
  }
  function locateBox(body, latlng) {
    const rows = [[t('location'), latlng.lat.toFixed(5) + ', ' + latlng.lng.toFixed(5)]];
    for (const [field, key] of LOCATE_ROWS) rows.push([t(key), gridText(body[field])]);
    const specials = Array.isArray(body.special_grids) ? body.special_grids.map(gridText).filter(Boolean) : [];
    rows.push([t('special'), specials.length ? specials.join('\n') : null]);
    return popupBox(t('locate'), rows);
  }
  map.on('click', async function (e) {
    const seq = ++locateSeq;
    const popup = L.popup({ maxWidth: 340 }).setLatLng(e.latlng)
      .setContent(el('div', 'gl-popup gl-muted', t('loading'))).openOn(map);
    let content;
    try {
      const res = await request('/locate', { lon: e.latlng.lng.toFixed(6), lat: e.latlng.lat.toFixed(6) });
      content = res.ok && res.body && typeof res.body === 'object' ? locateBox(res.body, e.latlng) : problemBox(res);
    } catch (err) {
      console.warn('gridlink: locate', err);
      content = popupBox(t('loadFailed'), []);
    }
    if (seq === locateSeq && map.hasLayer(popup)) popup.setContent(content);
  });

  // ---- account: a cookie session (HttpOnly, SameSite=Strict) and its CSRF token, kept in memory only ----
  let account = null;  // {login, role, scope, csrf_token} while signed in
  const loginForm = document.getElementById('login-form');
  function renderAccount() {
    loginForm.hidden = account !== null;
    document.getElementById('who').hidden = account === null;
    if (account) {
      document.getElementById('who-text').textContent =
        t('signedIn') + ' ' + account.login + '（' + account.role + ' · ' + account.scope + '）';
    }
  }
  async function loadAccount() {
    const res = await request('/auth/session').catch(function () { return { ok: false }; });
    account = res.ok && res.body ? res.body : null;
    renderAccount();
  }
  loginForm.addEventListener('submit', async function (e) {
    e.preventDefault();
    const form = new URLSearchParams(new FormData(loginForm));
    const resp = await fetch(API + '/auth/session', { method: 'POST', body: form,
      headers: { Accept: 'application/json' }, credentials: 'same-origin' }).catch(function () { return null; });
    document.getElementById('login-error').hidden = !!(resp && resp.ok);
    if (resp && resp.ok) {
      account = await resp.json();
      document.getElementById('login-pass').value = '';
    }
    renderAccount();
  });
  document.getElementById('logout').addEventListener('click', async function () {
    if (account) {
      await fetch(API + '/auth/session', { method: 'DELETE', credentials: 'same-origin',
        headers: { 'X-CSRF-Token': account.csrf_token } }).catch(function () { return null; });
    }
    account = null;
    renderAccount();
  });

  // ---- language ----------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    document.querySelectorAll('[data-i18n]').forEach(function (node) { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll('[data-i18n-placeholder]').forEach(function (node) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    document.getElementById('lang-toggle').lang = t('toggleLang');
    map.closePopup();
    buildControl();
    renderStats();
    renderLayerErrors();
  }
  document.getElementById('lang-toggle').addEventListener('click', function () {
    lang = lang === 'en' ? 'zh' : 'en';
    try { window.localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode: not remembered */ }
    applyLanguage();
  });

  applyLanguage();
  for (const def of LAYERS) if (def.on) def.layer.addTo(map);
  updateHint();
  loadStats();
  loadAccount();
})();
