/* The shared page shell: the top bar with the application name, the role-aware navigation, the language
 * switch and the login box. A page calls initShell() once; it resolves with the account (or null) after the
 * earlier session, if any, was checked, and calls `onAccount(account | null, reason)` on every login and
 * logout (`reason` 'expired' when a call answered 401: keep the page as it is, the login dialog is open).
 *
 * Markup expected in the page (web/templates/_shell.html renders it):
 *   <header id="gl-shell"> … <nav id="gl-nav"> … <button id="gl-lang"> … <span id="gl-who"> …
 *   <button id="gl-logout"> … <button id="gl-login-open"> …
 *   <dialog id="gl-login"> <form id="gl-login-form"> … </form> </dialog>
 */

import * as client from './api.js';
import { apply, lang, onLangChange, setLang, t } from './i18n.js';

/** The pages and the roles that see them; `built: false` pages stay hidden until they exist. */
export const PAGES = [
  { href: '/console', key: 'navConsole', roles: ['admin', 'dispatcher', 'inspector', 'grid_chief', 'handler',
    'owner', 'viewer', 'partner', 'planner'], built: true },
  { href: '/report', key: 'navReport', roles: ['admin', 'dispatcher', 'inspector', 'grid_chief', 'partner'],
    built: true },
  { href: '/registry', key: 'navRegistry', roles: ['admin', 'owner'], built: true },
  { href: '/planning', key: 'navPlanning', roles: ['admin', 'planner'], built: true },
  { href: '/dashboard', key: 'navDashboard', roles: ['admin', 'dispatcher', 'viewer'], built: true },
];

const $ = (id) => document.getElementById(id);

/** The links an account sees: public pages for everyone, the others by role. */
export function visiblePages(account, pages = PAGES) {
  const built = new Set((document.body.dataset.builtPages || '').split(',').filter(Boolean));
  return pages.filter((p) => (p.built || built.has(p.href))
    && (p.roles === null || (account && p.roles.includes(account.role))));
}

function renderNav(account) {
  const nav = $('gl-nav');
  if (!nav) return;
  nav.replaceChildren();
  for (const page of visiblePages(account)) {
    const a = document.createElement('a');
    a.href = page.href;
    a.textContent = t(page.key);
    const here = window.location.pathname === '/' ? '/console' : window.location.pathname;  // / is the console
    if (here === page.href) a.setAttribute('aria-current', 'page');
    nav.appendChild(a);
  }
}

function renderWho(account) {
  $('gl-who').textContent = account
    ? `${t('signedIn')}${account.login} · ${t('role_' + account.role)}` : '';
  $('gl-who').hidden = !account;
  $('gl-logout').hidden = !account;
  $('gl-login-open').hidden = Boolean(account);
}

/** A short message in the shell's status line (role="status": read out by screen readers). */
export function notify(message, kind = 'info') {
  const box = $('gl-notice');
  if (!box) return;
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
}

function openLogin(message) {
  const dialog = $('gl-login');
  $('gl-login-error').textContent = message || '';
  $('gl-login-error').hidden = !message;
  if (!dialog.open) dialog.showModal();
  $('gl-login-user').focus();
}

/** Start the shell; resolves with the account of a still valid earlier session, else null. */
export async function initShell({ onAccount = () => {} } = {}) {
  apply();
  let account = null;
  const changed = (next, restore, reason) => {
    account = next;
    renderNav(account);
    renderWho(account);
    onAccount(account, reason);
    if (restore && client.restoreForms() > 0) notify(t('formRestored'));
  };
  $('gl-lang').addEventListener('click', () => setLang(lang() === 'en' ? 'zh-CN' : 'en'));
  $('gl-login-open').addEventListener('click', () => openLogin());
  $('gl-login-cancel').addEventListener('click', () => $('gl-login').close());
  $('gl-logout').addEventListener('click', async () => {
    await client.logout();
    changed(null, false);
  });
  $('gl-login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = $('gl-login-form').querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const next = await client.login($('gl-login-user').value, $('gl-login-pass').value);
      $('gl-login-pass').value = '';
      $('gl-login').close();
      notify('');
      changed(next, true);
    } catch (err) {
      $('gl-login-error').textContent = `${t('loginFailed')}: ${err.message}`;
      $('gl-login-error').hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  client.onUnauthorized(() => {
    changed(null, false, 'expired');  // the page keeps what is on screen: the forms are filled back after login
    notify(t('sessionExpired'), 'warn');
    openLogin(t('sessionExpired'));
  });
  onLangChange(() => { renderNav(account); renderWho(account); });
  account = await client.resumeSession();
  changed(account, Boolean(account));
  return account;
}

export { openLogin };
