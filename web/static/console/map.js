/* The console's map: MapLibre GL JS (pinned in /static/vendor/maplibre-gl) on gridlink's own vector tiles.
 *
 * A plain background that needs nothing from outside; grids of every level, special grids, and — for a
 * signed-in reader only (the tiles need an account) — components and open cases. The online base map
 * (OpenStreetMap raster tiles) is a setting, off by default; when its tiles fail the setting says so and turns
 * itself off instead of failing silently. No text is drawn by MapLibre (labels need glyph files from
 * outside); names are in the "what is here" panel. */

import * as maplibregl from '/static/vendor/maplibre-gl/maplibre-gl.mjs';

const GRID_LAYERS = [
  // tile layer (its source: the tile layer of the same name, else `source`), colour, line width, fill opacity,
  // zoom from which it is drawn. Districts and towns, both drawn at every zoom, come in one tile ('outlines').
  { id: 'districts', source: 'outlines', color: '#1f3a5f', width: 2.5, fill: 0, minzoom: 0 },
  { id: 'towns', source: 'outlines', color: '#3f72af', width: 1.6, fill: 0, minzoom: 0 },
  { id: 'communities', color: '#4f8a3c', width: 1, fill: 0.03, minzoom: 11 },
  { id: 'grids', color: '#6b7280', width: 0.6, fill: 0.04, minzoom: 13 },
  { id: 'special-grids', color: '#d9480f', width: 1.4, fill: 0.1, minzoom: 11, dash: [3, 2] },
];
export const QUERY_LAYERS = ['cases-points', 'components-points', 'special-grids-fill', 'grids-fill',
  'communities-fill', 'towns-fill', 'districts-fill'];
const STATE_COLOURS = ['match', ['get', 'state'], 'reported', '#7c3aed', 'registered', '#2563eb',
  'dispatched', '#d97706', 'handled', '#059669', 'suspended', '#6b7280', '#dc2626'];

let casesVersion = 0;  // bumped by refreshCases: a new tile URL

function tileUrl(layer, version) {
  return `${window.location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt${version ? `?v=${version}` : ''}`;
}

/** The grid sources and layers (every level, special grids, the selected base grid's outline). */
function gridStyle() {
  const sources = {};
  const layers = [];
  for (const g of GRID_LAYERS) {
    const source = g.source || g.id;
    sources[source] = { type: 'vector', tiles: [tileUrl(source)], minzoom: 0, maxzoom: 16 };
    layers.push({ id: `${g.id}-fill`, type: 'fill', source, 'source-layer': g.id, minzoom: g.minzoom,
      paint: { 'fill-color': g.color, 'fill-opacity': g.fill } });
    const paint = { 'line-color': g.color, 'line-width': g.width };
    if (g.dash) paint['line-dasharray'] = g.dash;
    layers.push({ id: `${g.id}-line`, type: 'line', source, 'source-layer': g.id, minzoom: g.minzoom, paint });
  }
  // From the zoom the base grids are drawn at: below it their tiles are not fetched at all (a z10 view of the
  // city would otherwise fetch every base grid's outline for a highlight nobody could see).
  layers.push({ id: 'selected-line', type: 'line', source: 'grids', 'source-layer': 'grids', minzoom: 13,
    filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#f59e0b', 'line-width': 3 } });
  return { sources, layers };
}

/** The sources and layers that need an account: components and open cases. The case tiles are asked for only
 * inside the account's scope (`scope_bounds` of the session: outside it they hold nothing for this reader — a town
 * dispatcher's first view at z10 asks for 1–2 case tiles instead of a screenful). */
function accountStyle(account) {
  const cases = { type: 'vector', tiles: [tileUrl('cases', casesVersion)], minzoom: 8, maxzoom: 16 };
  const bounds = account && account.scope_bounds;
  if (Array.isArray(bounds) && bounds.length === 4) cases.bounds = bounds;
  return {
    sources: {
      components: { type: 'vector', tiles: [tileUrl('components')], minzoom: 10, maxzoom: 16 },
      cases,
    },
    layers: [
      { id: 'components-points', type: 'circle', source: 'components', 'source-layer': 'components', minzoom: 13,
        paint: {
          'circle-color': '#0e7490', 'circle-opacity': 0.8, 'circle-stroke-color': '#fff', 'circle-stroke-width': 0.5,
          'circle-radius': ['case', ['has', 'count'], ['min', 9, ['+', 2, ['sqrt', ['get', 'count']]]], 3.5] } },
      { id: 'component-selected', type: 'circle', source: 'components', 'source-layer': 'components',
        minzoom: 13,  // below, the tiles hold counts, not components: and the source is not fetched at all
        filter: ['==', ['get', 'code'], ''], paint: { 'circle-color': '#f59e0b', 'circle-radius': 9,
          'circle-stroke-color': '#1f2937', 'circle-stroke-width': 2 } },
      { id: 'cases-points', type: 'circle', source: 'cases', 'source-layer': 'cases', paint: {
        'circle-color': ['case', ['has', 'count'], '#dc2626', STATE_COLOURS], 'circle-opacity': 0.9,
        'circle-stroke-color': '#fff', 'circle-stroke-width': 1,
        'circle-radius': ['case', ['has', 'count'], ['min', 14, ['+', 4, ['sqrt', ['get', 'count']]]], 6] } },
    ],
  };
}

/** Add the layers that need an account (components, open cases) for `account` (the session's answer); remove them
 * on logout (`account` null). */
export function setSignedIn(map, account) {
  const { sources, layers } = accountStyle(account);
  for (const layer of layers) if (map.getLayer(layer.id)) map.removeLayer(layer.id);
  for (const id of Object.keys(sources)) if (map.getSource(id)) map.removeSource(id);
  if (!account) return;
  for (const [id, source] of Object.entries(sources)) map.addSource(id, source);
  for (const layer of layers) map.addLayer(layer);
}

/** Fetch the case tiles again (after a case event): a new URL, so MapLibre drops the tiles it holds. */
export function refreshCases(map) {
  const source = map.getSource('cases');
  if (!source) return;
  casesVersion += 1;
  source.setTiles([tileUrl('cases', casesVersion)]);
}

/** Show or hide the online base map; `onFail()` is called once when its tiles cannot be loaded. */
export function setBaseMap(map, on, onFail) {
  map.setLayoutProperty('base-online', 'visibility', on ? 'visible' : 'none');
  map.__baseFail = onFail;
  map.__baseFailed = false;
}

/** Highlight one base grid (its outline), or none with ''. */
export function selectGrid(map, code) {
  map.setFilter('selected-line', ['==', ['get', 'code'], code || '']);
}

/** Highlight one component (its point at the detailed zooms), or none with ''. */
export function selectComponent(map, code) {
  if (map.getLayer('component-selected')) map.setFilter('component-selected', ['==', ['get', 'code'], code || '']);
}

/** Create the map in `container` with the grids (and, for a signed-in `account`, the layers that need one) in its
 * first style, so that their tiles are asked for with the first frame; resolves once the style is loaded (layers
 * may be added: the tiles may still be on their way, see `map.loaded()` and the 'idle' event). */
export function createMap(container, { center, zoom, baseMapUrl, account = null }) {
  const grids = gridStyle();
  const signed = account ? accountStyle(account) : { sources: {}, layers: [] };
  const map = new maplibregl.Map({
    container, center, zoom, maxZoom: 19, attributionControl: { compact: true }, fadeDuration: 0,
    style: {
      version: 8,
      sources: {
        online: { type: 'raster', tiles: [`${baseMapUrl}/{z}/{x}/{y}.png`], tileSize: 256, maxzoom: 19,
          attribution: '© OpenStreetMap contributors' },
        ...grids.sources, ...signed.sources,
      },
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': '#eef1f4' } },
        { id: 'base-online', type: 'raster', source: 'online', layout: { visibility: 'none' } },
        ...grids.layers, ...signed.layers,
      ],
    },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.on('error', (event) => {
    if (event.sourceId === 'online' && !map.__baseFailed) {
      map.__baseFailed = true;
      map.setLayoutProperty('base-online', 'visibility', 'none');
      if (map.__baseFail) map.__baseFail(event.error);
    }
  });
  return new Promise((resolve) => {
    map.once('style.load', () => resolve(map));
  });
}

/** The features under a screen point, top-most first, one per layer and code. */
export function featuresAt(map, point) {
  const box = [[point.x - 4, point.y - 4], [point.x + 4, point.y + 4]];
  const layers = QUERY_LAYERS.filter((id) => map.getLayer(id));
  const seen = new Set();
  const out = [];
  for (const f of map.queryRenderedFeatures(box, { layers })) {
    const key = `${f.layer.id}:${f.properties.code || f.properties.id || JSON.stringify(f.geometry.coordinates)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ layer: f.layer.id.replace(/-(fill|points)$/, ''), properties: f.properties,
      coordinates: f.geometry.type === 'Point' ? f.geometry.coordinates : null });
  }
  return out;
}

export { maplibregl };
