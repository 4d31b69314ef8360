/* The planner's layers on the console's MapLibre map (web/static/console/map.js creates it) and the line /
 * polygon drawing tool.
 *
 * GeoJSON sources of the page's own, drawn over the console's tile layers (whose own grids are hidden: the
 * page shows the chosen level of the chosen area, now or as of a past date):
 *   pl-grids    the area's grids (current or past), selected one outlined
 *   pl-planned  the plan's shapes (its edits, as the server snapped them)
 *   pl-problems the plan's (or an imported file's) topology problems
 *   pl-moved    components and open cases the plan moves to another grid
 *   pl-history  one version of a grid's shape
 *   pl-draw     the line or polygon being drawn
 */

const EMPTY = { type: 'FeatureCollection', features: [] };
const TILE_GRID_LAYERS = ['communities-fill', 'communities-line', 'grids-fill', 'grids-line', 'selected-line',
  'special-grids-fill', 'special-grids-line', 'towns-fill'];

/** Add the page's sources and layers (once, after the style is loaded). */
export function addPlanningLayers(map) {
  for (const id of TILE_GRID_LAYERS) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'none');
  for (const id of ['pl-grids', 'pl-planned', 'pl-problems', 'pl-moved', 'pl-history', 'pl-draw']) {
    map.addSource(id, { type: 'geojson', data: EMPTY });
  }
  map.addLayer({ id: 'pl-grids-fill', type: 'fill', source: 'pl-grids',
    paint: { 'fill-color': '#3f72af', 'fill-opacity': 0.06 } });
  map.addLayer({ id: 'pl-grids-line', type: 'line', source: 'pl-grids',
    paint: { 'line-color': '#374151', 'line-width': 1 } });
  map.addLayer({ id: 'pl-selected', type: 'line', source: 'pl-grids', filter: ['==', ['get', 'code'], ''],
    paint: { 'line-color': '#f59e0b', 'line-width': 3.5 } });
  map.addLayer({ id: 'pl-history-line', type: 'line', source: 'pl-history',
    paint: { 'line-color': '#7c3aed', 'line-width': 3, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'pl-planned-fill', type: 'fill', source: 'pl-planned',
    paint: { 'fill-color': '#ea580c', 'fill-opacity': 0.12 } });
  map.addLayer({ id: 'pl-planned-line', type: 'line', source: 'pl-planned',
    paint: { 'line-color': '#ea580c', 'line-width': 2.5 } });
  map.addLayer({ id: 'pl-problems-fill', type: 'fill', source: 'pl-problems',
    paint: { 'fill-color': '#dc2626', 'fill-opacity': 0.45 } });
  map.addLayer({ id: 'pl-problems-line', type: 'line', source: 'pl-problems',
    paint: { 'line-color': '#991b1b', 'line-width': 2 } });
  map.addLayer({ id: 'pl-moved-points', type: 'circle', source: 'pl-moved', paint: {
    'circle-color': ['match', ['get', 'kind'], 'case', '#dc2626', '#0e7490'], 'circle-radius': 6,
    'circle-stroke-color': '#facc15', 'circle-stroke-width': 2.5 } });
  map.addLayer({ id: 'pl-draw-line', type: 'line', source: 'pl-draw',
    paint: { 'line-color': '#be123c', 'line-width': 3, 'line-dasharray': [1.5, 1] } });
  map.addLayer({ id: 'pl-draw-points', type: 'circle', source: 'pl-draw', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-color': '#fff', 'circle-radius': 4, 'circle-stroke-color': '#be123c', 'circle-stroke-width': 2 } });
}

/** Replace one of the page's sources with a FeatureCollection (or an array of features); null empties it. */
export function setData(map, source, data) {
  const collection = !data ? EMPTY : (Array.isArray(data) ? { type: 'FeatureCollection', features: data } : data);
  map.getSource(source).setData(collection);
}

/** Outline one grid of the area, or none with ''. */
export function selectGrid(map, code) {
  map.setFilter('pl-selected', ['==', ['get', 'code'], code || '']);
}

/** The bounding box [[w, s], [e, n]] of GeoJSON geometries (features or geometries), or null. */
export function bounds(items) {
  let w = Infinity; let s = Infinity; let e = -Infinity; let n = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else for (const x of c) walk(x);
  };
  for (const item of items) {
    const g = item && (item.geometry || item);
    if (g && g.coordinates) walk(g.coordinates);
  }
  return Number.isFinite(w) ? [[w, s], [e, n]] : null;
}

/**
 * The drawing tool: clicks add vertices, a double click (or finish()) ends the shape, Escape (or cancel())
 * drops it. kind 'line' answers a GeoJSON LineString (two vertices at least), 'polygon' a Polygon (three).
 */
export class Drawing {
  constructor(map, { onChange = () => {} } = {}) {
    this.map = map;
    this.points = null;
    this.onChange = onChange;
    map.on('click', (event) => this.add(event.lngLat));
    map.on('dblclick', (event) => {
      if (!this.points) return;
      event.preventDefault();
      this.add(event.lngLat);
      this.finish();
    });
    document.addEventListener('keydown', (event) => {
      if (!this.points) return;
      if (event.key === 'Escape') this.cancel();
      if (event.key === 'Enter') this.finish();
    });
  }

  get active() { return this.points !== null; }

  /** Start drawing a 'line' or a 'polygon'; `done(geometry)` is called when it is finished. */
  start(kind, done) {
    this.kind = kind;
    this.done = done;
    this.points = [];
    this.map.doubleClickZoom.disable();
    this.map.getCanvas().style.cursor = 'crosshair';
    this.render();
  }

  add(lngLat) {
    if (!this.points) return;
    const p = [Number(lngLat.lng.toFixed(7)), Number(lngLat.lat.toFixed(7))];
    const last = this.points[this.points.length - 1];
    if (last) {  // the clicks of a double click land on the same pixel: one vertex
      const a = this.map.project(last); const b = this.map.project(p);
      if (Math.hypot(a.x - b.x, a.y - b.y) < 3) return;
    }
    this.points.push(p);
    this.render();
  }

  geometry() {
    const pts = this.points || [];
    if (this.kind === 'polygon') {
      return pts.length >= 3 ? { type: 'Polygon', coordinates: [[...pts, pts[0]]] } : null;
    }
    return pts.length >= 2 ? { type: 'LineString', coordinates: pts } : null;
  }

  render() {
    const pts = this.points || [];
    const features = pts.map((c) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: {} }));
    if (pts.length >= 2) {
      const ring = this.kind === 'polygon' && pts.length >= 3 ? [...pts, pts[0]] : pts;
      features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: ring }, properties: {} });
    }
    setData(this.map, 'pl-draw', features);
    this.onChange(pts.length, this.kind);
  }

  stop() {
    this.points = null;
    this.map.getCanvas().style.cursor = '';
    setTimeout(() => this.map.doubleClickZoom.enable(), 0);
  }

  /** End the shape and hand it on (nothing when it has too few vertices: keep drawing). */
  finish() {
    const geometry = this.geometry();
    if (!geometry) return false;
    performance.mark('pl-line-finished');
    const done = this.done;
    this.stop();
    setData(this.map, 'pl-draw', { type: 'FeatureCollection', features: [
      { type: 'Feature', geometry, properties: {} }] });
    this.onChange(null, this.kind);
    done(geometry);
    return true;
  }

  cancel() {
    this.stop();
    setData(this.map, 'pl-draw', null);
    this.onChange(null, this.kind);
  }
}
