/* A click on the map: "what is here" from the server, and "new case here".
 *
 * What is here: GET /api/v1/here (grid hierarchy, teams — phone numbers only for roles that may see them —,
 * special grids, nearby components) when the server has it, else GET /api/v1/locate (the grid hierarchy).
 * New case here: a searchable category picker (GET /api/v1/categories, else the Open311 service list), the
 * assignment preview (POST /api/v1/cases/preview, when the server has it) before saving, then
 * POST /api/v1/cases and the case opened in the details panel. */

import { api } from '/static/common/api.js';
import { lang, t } from '/static/common/i18n.js';
import { button, el } from './dom.js';

let categories = null;  // [{code, name, grade}] of leaf categories

async function leafCategories() {
  if (categories) return categories;
  try {
    const body = (await api('categories')).body;
    const nodes = Array.isArray(body) ? body : (body.categories || body.nodes || []);
    categories = nodes.filter((n) => n.leaf).map((n) => ({ code: n.code, grade: n.grade,
      name: (lang() === 'en' ? n.name_en : n.name_zh) || n.name_zh || n.code }));
  } catch (err) {
    if (err.status !== 404) throw err;
    const services = (await api('/open311/v2/services.json')).body;
    categories = services.map((s) => ({ code: s.service_code, name: s.service_name, grade: null }));
  }
  return categories;
}

function dl(rows) {
  const list = el('dl');
  for (const [k, v] of rows) if (v) list.append(el('dt', null, k), el('dd', null, v));
  return list;
}

function areaName(a) { return a ? `${a.name || ''} ${a.code || ''}`.trim() : ''; }

/** Fill `target` with the server's answer for the point (after the features drawn there). */
export async function describeHere(target, lngLat, signedIn) {
  const box = el('section', 'cl-here-server');
  box.append(el('h3', null, t('hierarchy')), el('p', 'cl-hint', t('locating')));
  target.prepend(box);
  const q = `lon=${lngLat.lng.toFixed(6)}&lat=${lngLat.lat.toFixed(6)}`;
  let here;
  try {
    if (!signedIn) throw Object.assign(new Error('anonymous'), { status: 404 });  // /here needs an account
    here = (await api(`here?${q}`)).body;
  } catch (err) {
    if (err.status !== 404) {  // 404: a server without /here (issue 20's helper endpoint): ask /locate
      box.lastChild.textContent = err.message;
      return;
    }
    try { here = (await api(`locate?${q}`)).body; } catch (e2) { box.lastChild.textContent = e2.message; return; }
  }
  const rows = [[t('layer_districts'), areaName(here.district)], [t('layer_towns'), areaName(here.town)],
    [t('layer_communities'), areaName(here.community)], [t('layer_grids'), areaName(here.grid)],
    [t('layer_special-grids'), (here.special_grids || []).map(areaName).join('、')]];
  box.lastChild.replaceWith(dl(rows));
  if (here.teams) {
    const team = el('section');
    team.append(el('h3', null, t('team')));
    for (const [code, members] of Object.entries(here.teams)) {
      for (const m of members) {
        team.append(el('p', null, `${code} · ${t('team_' + m.role)} · ${m.name || ''} ${m.phone || ''}`.trim()));
      }
    }
    box.append(team);
  }
  if (here.components && here.components.length) {
    const near = el('section');
    near.append(el('h3', null, t('nearby')));
    for (const c of here.components.slice(0, 10)) {
      near.append(el('p', null, `${c.code} · ${c.class_name || c.class_code} · ${Math.round(c.distance_m)} m`));
    }
    box.append(near);
  }
}

/** The "new case here" form in `target`; `onCreated(case)` after a save. */
export function newCaseForm(target, lngLat, onCreated) {
  const form = el('form', 'gl-form cl-new-case');
  form.id = 'cl-new-case';
  form.dataset.keep = '';
  const search = el('input');
  search.name = 'q';
  search.type = 'search';
  search.maxLength = 64;
  search.setAttribute('aria-label', t('categorySearch'));
  search.placeholder = t('categorySearch');
  const pick = el('select');
  pick.name = 'category';
  pick.required = true;
  pick.size = 6;
  pick.setAttribute('aria-label', t('categoryCode'));
  const description = el('textarea');
  description.name = 'description';
  description.maxLength = 1000;
  description.rows = 2;
  const labelled = (label, node) => { const l = el('label'); l.append(el('span', null, label), node); return l; };
  const preview = el('div', 'cl-preview');
  preview.setAttribute('aria-live', 'polite');
  const error = el('p', 'gl-error');
  error.setAttribute('role', 'alert');
  error.hidden = true;
  const save = el('button', 'gl-button gl-primary', t('save'));
  save.type = 'submit';
  const row = el('div', 'gl-actions');
  row.append(button(t('preview'), () => showPreview()), save);
  form.append(el('h3', null, t('newCase')), search, labelled(t('categoryCode'), pick),
    labelled(t('descriptionField'), description), preview, error, row);
  target.append(form);

  const report = () => ({ category: pick.value, location: { type: 'Point', coordinates: [lngLat.lng, lngLat.lat] },
    description: description.value || null, source: 'dispatcher' });
  const fill = async () => {
    let list;
    try { list = await leafCategories(); } catch (err) { error.textContent = err.message; error.hidden = false; return; }
    const q = search.value.trim().toLowerCase();
    const shown = list.filter((c) => !q || c.code.toLowerCase().includes(q) || c.name.toLowerCase().includes(q)).slice(0, 200);
    const chosen = pick.value;
    pick.replaceChildren(...shown.map((c) => {
      const o = el('option', null, `${c.code} ${c.name}${c.grade ? ' [' + c.grade + ']' : ''}`);
      o.value = c.code;
      return o;
    }));
    if (chosen) pick.value = chosen;
  };
  const showPreview = async () => {
    error.hidden = true;
    if (!pick.value) { pick.focus(); return; }
    preview.replaceChildren(el('p', 'cl-hint', t('locating')));
    try {
      const p = (await api('cases/preview', { json: report() })).body;
      preview.replaceChildren(el('h4', null, t('preview')), dl([[t('grid'), areaName(p.grid)],
        [t('community'), areaName(p.community)], [t('town'), areaName(p.town)],
        [t('owner'), p.owner && (p.owner.name || p.owner.key)], [t('component'), p.component && p.component.code],
        [t('deadline'), p.deadline], [t('grade'), p.category && p.category.grade],
        [t('duplicateOf'), p.duplicate && (p.duplicate.case_no || (p.duplicate.hidden ? '—' : ''))]]));
    } catch (err) {
      preview.replaceChildren(el('p', err.status === 404 || err.status === 405 ? 'cl-hint' : 'gl-error',
        err.status === 404 || err.status === 405 ? t('previewUnavailable') : err.message));
    }
  };
  search.addEventListener('input', fill);
  pick.addEventListener('change', () => { if (pick.value) showPreview(); });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    save.disabled = true;
    try {
      const created = (await api('cases', { json: report() })).body;
      form.replaceChildren(el('p', 'cl-notice', t('created', { no: created.case_no,
        owner: created.owner ? `${created.owner.name} (${created.owner.key})` : '—' })));
      onCreated(created);
    } catch (err) {
      save.disabled = false;
      if (err.status !== 401) { error.textContent = err.message; error.hidden = false; }
    }
  });
  fill();
  search.focus();
  return form;
}
