/* Keyboard shortcuts of the console (never while typing in a field, never with Ctrl/Alt/Meta):
 *   /  the case filter's category field     N  new case at the map's centre    R  refresh list and inbox
 *   I  the inbox                             L  the case list                   Esc close the open panel
 *   P  print the open case's sheet          1–9 the open case's n-th allowed action (its form)
 */

import { t } from '/static/common/i18n.js';

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

export function installShortcuts(state, { selectTab, showHere, refreshAll }) {
  const $ = (id) => document.getElementById(id);
  const help = $('cl-keys');
  if (help) help.textContent = t('shortcuts');
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target) || !state.account) return;
    if (document.querySelector('dialog[open]')) return;
    const key = event.key;
    const details = $('cl-details');
    if (key === '/') {
      selectTab('list');
      $('cl-filter').elements.namedItem('category').focus();
    } else if (key === 'n' || key === 'N') {
      const center = state.map.getCenter();
      showHere(state.map.project(center), center);
      const start = $('cl-new-here');
      if (start) start.click();
    } else if (key === 'r' || key === 'R') {
      refreshAll();
    } else if (key === 'i' || key === 'I') {
      selectTab('inbox');
    } else if (key === 'l' || key === 'L') {
      selectTab('list');
    } else if (key === 'Escape') {
      if (!$('cl-here').hidden) $('cl-here').hidden = true;
      else if (!details.hidden) state.details.close();
    } else if ((key === 'p' || key === 'P') && !details.hidden) {
      window.print();
    } else if (/^[1-9]$/.test(key) && !details.hidden) {
      const actions = details.querySelectorAll('.cl-actions button[data-action]');
      const chosen = actions[Number(key) - 1];
      if (chosen) chosen.click();
    } else {
      return;
    }
    event.preventDefault();
  });
}
