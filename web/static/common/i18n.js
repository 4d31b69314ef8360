/* Interface strings of gridlink's pages: Chinese (zh-CN) first, English switchable.
 *
 * The language is chosen by `?lang=zh-CN|en` (and then remembered), else the one remembered in localStorage,
 * else Chinese. Every visible string goes through t(key); elements carry data-i18n (text),
 * data-i18n-placeholder, data-i18n-title or data-i18n-aria-label and apply() fills them. A page adds its own
 * strings with register({ 'zh-CN': {...}, en: {...} }); a key missing in English falls back to Chinese, a key
 * missing in both shows the key itself (so a forgotten string is visible, not blank). */

const LANG_KEY = 'gridlink.lang';
const LANGS = ['zh-CN', 'en'];

const STRINGS = {
  'zh-CN': {
    appName: 'gridlink 网格化联动指挥', langToggle: 'English', nav: '主导航',
    navConsole: '指挥台', navReport: '上报', navRegistry: '部件台账', navPlanning: '网格规划', navDashboard: '考核看板',
    navHome: '首页',
    user: '登录名', password: '密码', login: '登录', logout: '退出', loginTitle: '登录',
    loginFailed: '登录失败', signedIn: '已登录：', sessionExpired: '登录已过期，请重新登录；未提交的内容已保留。',
    formRestored: '已恢复登录前未提交的内容。', close: '关闭',
    requestFailed: '请求失败', networkFailed: '网络连接失败，请稍后重试。', serverError: '服务器错误',
    role_admin: '管理员', role_dispatcher: '调度员', role_inspector: '监督员', role_grid_chief: '网格长',
    role_handler: '处置人员', role_owner: '权属单位', role_planner: '规划员', role_viewer: '查看者',
    role_partner: '合作单位',
  },
  en: {
    appName: 'gridlink grid command centre', langToggle: '中文', nav: 'Main navigation',
    navConsole: 'Console', navReport: 'Report', navRegistry: 'Registry', navPlanning: 'Planning',
    navDashboard: 'Dashboard', navHome: 'Home',
    user: 'Login', password: 'Password', login: 'Log in', logout: 'Log out', loginTitle: 'Log in',
    loginFailed: 'Login failed', signedIn: 'Signed in: ',
    sessionExpired: 'Your session has expired: please log in again; what you had typed is kept.',
    formRestored: 'What you had typed before logging in is restored.', close: 'Close',
    requestFailed: 'Request failed', networkFailed: 'Network connection failed; please try again.',
    serverError: 'Server error',
    role_admin: 'administrator', role_dispatcher: 'dispatcher', role_inspector: 'inspector',
    role_grid_chief: 'grid chief', role_handler: 'handler', role_owner: 'asset owner', role_planner: 'planner',
    role_viewer: 'viewer', role_partner: 'partner',
  },
};

function storage() {
  try { return window.localStorage; } catch (e) { return null; }  // disabled storage: just not remembered
}

function normalise(value) {
  if (!value) return null;
  const v = String(value).toLowerCase();
  if (v === 'en' || v.startsWith('en-')) return 'en';
  if (v === 'zh' || v.startsWith('zh')) return 'zh-CN';
  return null;
}

function initialLang() {
  const asked = normalise(new URLSearchParams(window.location.search).get('lang'));
  const store = storage();
  if (asked) {
    if (store) store.setItem(LANG_KEY, asked);
    return asked;
  }
  return normalise(store && store.getItem(LANG_KEY)) || 'zh-CN';
}

let current = initialLang();
const listeners = [];

/** The current language: 'zh-CN' or 'en'. */
export function lang() { return current; }

/** Add a page's strings: { 'zh-CN': {key: text}, en: {key: text} }. */
export function register(dict) {
  for (const l of LANGS) Object.assign(STRINGS[l], dict[l] || {});
}

/** The string of `key` in the current language; `{name}` placeholders are replaced from `vars`. */
export function t(key, vars) {
  let s = STRINGS[current][key];
  if (s === undefined) s = STRINGS['zh-CN'][key];
  if (s === undefined) s = key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (vars[name] !== undefined ? String(vars[name]) : m));
  return s;
}

/** Fill every data-i18n* attribute under `root` and set the document's language. */
export function apply(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const [attr, data] of [['placeholder', 'i18nPlaceholder'], ['title', 'i18nTitle'],
    ['aria-label', 'i18nAriaLabel']]) {
    for (const node of root.querySelectorAll(`[data-${data.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}]`)) {
      node.setAttribute(attr, t(node.dataset[data]));
    }
  }
}

/** Switch language, remember it, refill the page and tell the listeners (pages re-render dynamic text). */
export function setLang(next) {
  current = normalise(next) || 'zh-CN';
  const store = storage();
  if (store) store.setItem(LANG_KEY, current);
  apply();
  for (const fn of listeners) fn(current);
}

/** Call `fn(lang)` after every language switch. */
export function onLangChange(fn) { listeners.push(fn); }

/** A date-time in the current language (Asia/Shanghai, the centre's clock). */
export function formatTime(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(current, { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit',
    day: '2-digit', hour: '2-digit', minute: '2-digit' });
}
