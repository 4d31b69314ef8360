/* Periods of the evaluation as the dashboard asks for them: local dates (Suzhou time, the server reads a time
 * without offset as Suzhou's), `to` exclusive as GET /api/v1/kpi takes it. Pure functions, no DOM. */

const pad = (n) => String(n).padStart(2, '0');

/** 'YYYY-MM-DD' of a year, a month (1–12) and a day; months and days past the end roll over like Date. */
export function isoDate(year, month, day = 1) {
  const d = new Date(Date.UTC(year, month - 1, day));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** The day after an ISO date. */
export function nextDay(iso) {
  const [y, m, d] = iso.split('-').map(Number);
  return isoDate(y, m, d + 1);
}

/** The day before an ISO date. */
export function previousDay(iso) {
  const [y, m, d] = iso.split('-').map(Number);
  return isoDate(y, m, d - 1);
}

/** The last complete month before `today` (a Date) as 'YYYY-MM'. */
export function lastMonth(today = new Date()) {
  return isoDate(today.getFullYear(), today.getMonth(), 1).slice(0, 7);
}

/** {from, to} (to exclusive) of the form's choice, or null when it is incomplete. */
export function periodOf({ kind, month, year, quarter, from, to }) {
  if (kind === 'month' && /^\d{4}-\d{2}$/.test(month || '')) {
    const [y, m] = month.split('-').map(Number);
    return { from: isoDate(y, m), to: isoDate(y, m + 1) };
  }
  const y = Number(year);
  if (kind === 'quarter' && Number.isInteger(y) && y > 0) {
    const first = (Number(quarter) - 1) * 3 + 1;
    return { from: isoDate(y, first), to: isoDate(y, first + 3) };
  }
  if (kind === 'year' && Number.isInteger(y) && y > 0) return { from: isoDate(y, 1), to: isoDate(y + 1, 1) };
  if (kind === 'custom' && from && to && from <= to) return { from, to: nextDay(to) };
  return null;
}

/** The calendar months that overlap [from, to): [{month: 'YYYY-MM', from, to}], at most `limit`, the latest
 * kept. A period shorter than three months shows the months up to its end (a trend needs a few points). */
export function monthsOf(period, limit = 12, least = 6) {
  const [fy, fm] = period.from.split('-').map(Number);
  const last = previousDay(period.to);
  const [ly, lm] = last.split('-').map(Number);
  let count = (ly - fy) * 12 + (lm - fm) + 1;
  count = Math.min(limit, Math.max(count, least));
  const months = [];
  for (let i = count - 1; i >= 0; i -= 1) {
    const from = isoDate(ly, lm - i);
    months.push({ month: from.slice(0, 7), from, to: isoDate(ly, lm - i + 1) });
  }
  return months;
}
