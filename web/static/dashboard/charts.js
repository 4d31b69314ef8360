/* Small SVG charts drawn by the dashboard's own code (no library): a line chart of one figure by month and
 * the 70 / 20 / 10 split as a stacked bar with its targets. Text from the API goes in as text only. */

const SVG = 'http://www.w3.org/2000/svg';
const SPLIT_COLOURS = { grid: '#1f6f43', department: '#1f4e8c', enforcement: '#9a3412' };
export const SPLIT_TARGETS = { grid: 0.7, department: 0.2, enforcement: 0.1 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/** A line chart of `points` ([{label, value|null}]) titled `title`; `format(value)` writes a value. Null
 * values (nothing due that month) break the line. */
export function lineChart(title, points, format) {
  const width = 300, height = 120, left = 38, right = 18, top = 20, bottom = 22;
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const max = Math.max(...values, 0) || 1;
  const x = (i) => left + (points.length > 1 ? (i * (width - left - right)) / (points.length - 1) : 0);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'db-chart', role: 'img' });
  const summary = points.map((p) => `${p.label}: ${p.value === null ? '—' : format(p.value)}`).join(', ');
  chart.setAttribute('aria-label', `${title}: ${summary}`);
  chart.append(svg('title', {}, `${title}: ${summary}`));
  chart.append(svg('text', { x: 2, y: 13, class: 'db-chart-title' }, title));
  chart.append(svg('line', { x1: left, x2: width - right, y1: y(0), y2: y(0), class: 'db-axis' }));
  chart.append(svg('text', { x: left - 4, y: y(max) + 4, class: 'db-tick', 'text-anchor': 'end' }, format(max)));
  chart.append(svg('text', { x: left - 4, y: y(0), class: 'db-tick', 'text-anchor': 'end' }, format(0)));
  let path = '';
  let pen = 'M';  // a month without a value lifts the pen: the line breaks there
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) { pen = 'M'; return; }
    path += `${pen}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
    pen = 'L';
    chart.append(svg('circle', { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 2.5, class: 'db-dot' }));
  });
  if (path) chart.append(svg('path', { d: path, class: 'db-line' }));
  const every = Math.ceil(points.length / 6);
  points.forEach((p, i) => {
    if (i % every === 0 || i === points.length - 1) {
      chart.append(svg('text', { x: x(i), y: height - 6, class: 'db-tick', 'text-anchor': 'middle' }, p.label));
    }
  });
  return chart;
}

/** The split of the closed cases as one stacked bar (shares), the target marks under it, and a legend with
 * counts; `label(where)` names a part. */
export function splitBar(split, label, targetLabel) {
  const width = 600, height = 46;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'db-split-bar', role: 'img' });
  const text = Object.keys(SPLIT_TARGETS).map((w) => `${label(w)} ${split[w].cases}`
    + ` (${split[w].share === null ? '—' : (split[w].share * 100).toFixed(1) + '%'}; ${targetLabel} ${SPLIT_TARGETS[w] * 100}%)`);
  chart.setAttribute('aria-label', text.join(', '));
  chart.append(svg('title', {}, text.join(', ')));
  let at = 0;
  for (const where of Object.keys(SPLIT_TARGETS)) {
    const share = split[where].share || 0;
    const w = share * width;
    if (w > 0) chart.append(svg('rect', { x: at, y: 0, width: w, height: 24, fill: SPLIT_COLOURS[where] }));
    at += w;
  }
  if (at === 0) chart.append(svg('rect', { x: 0, y: 0, width, height: 24, class: 'db-empty' }));
  let mark = 0;
  for (const where of Object.keys(SPLIT_TARGETS)) {
    mark += SPLIT_TARGETS[where] * width;
    if (mark < width) chart.append(svg('line', { x1: mark, x2: mark, y1: 0, y2: 32, class: 'db-target' }));
  }
  chart.append(svg('text', { x: 0, y: 44, class: 'db-tick' }, `${targetLabel} 70% · 20% · 10%`));
  const legend = document.createElement('ul');
  legend.className = 'db-legend';
  for (const [i, where] of Object.keys(SPLIT_TARGETS).entries()) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `db-swatch db-swatch-${where}`;
    li.append(swatch, document.createTextNode(text[i]));
    li.dataset.split = where;
    legend.append(li);
  }
  const box = document.createElement('div');
  box.append(chart, legend);
  return box;
}
