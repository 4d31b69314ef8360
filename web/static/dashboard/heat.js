/* The heat map of the period's cases: the console's MapLibre map (web/static/console/map.js: the offline
 * background, grids of every level from /tiles) with a heatmap layer over GET /api/v1/kpi/heat — the cases
 * the evaluation counts, as points per ~400 m cell weighted by their count. */

import { createMap } from '/static/console/map.js';

const EMPTY = { type: 'FeatureCollection', features: [] };

/** Create the map in `container`; resolves with it once its style and grid layers are loaded. */
export async function createHeatMap(container, { center, zoom, baseMapUrl }) {
  const map = await createMap(container, { center, zoom, baseMapUrl });
  map.addSource('heat', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'heat', type: 'heatmap', source: 'heat', paint: {
      'heatmap-weight': ['interpolate', ['linear'], ['get', 'n'], 0, 0, 1, 0.15, 50, 1],
      'heatmap-intensity': ['interpolate', ['linear'], ['zoom'], 8, 0.8, 14, 2.5],
      'heatmap-radius': ['interpolate', ['linear'], ['zoom'], 8, 10, 12, 22, 15, 40],
      'heatmap-opacity': 0.85,
    },
  });
  return map;
}

/** Show `cells` (the heat endpoint's FeatureCollection) and fit the map to them. */
export function showHeat(map, cells) {
  map.getSource('heat').setData(cells);
  const features = cells.features || [];
  if (!features.length) return;
  let [w, s, e, n] = [180, 90, -180, -90];
  for (const f of features) {
    const [lon, lat] = f.geometry.coordinates;
    w = Math.min(w, lon); e = Math.max(e, lon); s = Math.min(s, lat); n = Math.max(n, lat);
  }
  map.fitBounds([[w, s], [e, n]], { padding: 30, maxZoom: 14, duration: 0 });
}
