/* The registry's map: the console's MapLibre setup (grids on gridlink's vector tiles, console/map.js) plus
 *  - the components of /tiles at their readable zooms (one point per component), an owner's own only: the
 *    tiles hold every owner's, the registry shows an owner what it lists;
 *  - the rows of the table's current page (a GeoJSON source, every zoom), so table and map show one thing;
 *  - the selected component, highlighted; a draggable marker while it is being moved. */

import { createMap, maplibregl } from '/static/console/map.js';

const DETAIL_ZOOM = 16;  // tiles/layers.py: below it a component tile holds one count per cell, not components
const EMPTY = { type: 'FeatureCollection', features: [] };

function tileUrl(version) {
  return `${window.location.origin}/tiles/components/{z}/{x}/{y}.mvt${version ? `?v=${version}` : ''}`;
}

/** A point for a geometry: itself, or the middle of its bounding box (lines and polygons). */
export function anchorOf(geometry) {
  if (!geometry) return null;
  if (geometry.type === 'Point') return geometry.coordinates;
  const xs = [];
  const ys = [];
  const walk = (c) => { if (typeof c[0] === 'number') { xs.push(c[0]); ys.push(c[1]); } else c.forEach(walk); };
  walk(geometry.coordinates);
  return [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
}

export class RegistryMap {
  constructor(container, options) {
    this.ready = createMap(container, options).then((map) => { this.map = map; this.addLayers(); return this; });
    this.version = 0;
    this.marker = null;
  }

  addLayers() {
    const map = this.map;
    map.addSource('components', { type: 'vector', tiles: [tileUrl()], minzoom: 10, maxzoom: 16 });
    map.addLayer({ id: 'components-points', type: 'circle', source: 'components', 'source-layer': 'components',
      minzoom: DETAIL_ZOOM, filter: ['!', ['has', 'count']], paint: {
        'circle-color': '#0e7490', 'circle-opacity': 0.75, 'circle-radius': 4,
        'circle-stroke-color': '#fff', 'circle-stroke-width': 0.5 } });
    map.addSource('page-rows', { type: 'geojson', data: EMPTY });
    map.addLayer({ id: 'page-rows-lines', type: 'line', source: 'page-rows', filter: ['!=', ['geometry-type'], 'Point'],
      paint: { 'line-color': '#7c3aed', 'line-width': 2 } });
    map.addLayer({ id: 'page-rows-points', type: 'circle', source: 'page-rows', paint: {
      'circle-color': '#7c3aed', 'circle-radius': 5, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
    map.addSource('component-selected', { type: 'geojson', data: EMPTY });
    // ids of their own: the shared map (console/map.js) has a 'selected-line' of its own (the clicked grid)
    map.addLayer({ id: 'component-selected-line', type: 'line', source: 'component-selected',
      filter: ['!=', ['geometry-type'], 'Point'],
      paint: { 'line-color': '#f59e0b', 'line-width': 4 } });
    map.addLayer({ id: 'component-selected-point', type: 'circle', source: 'component-selected', paint: {
      'circle-color': '#f59e0b', 'circle-radius': 9, 'circle-stroke-color': '#1f2937', 'circle-stroke-width': 2 } });
  }

  /** Show only `owner`'s components from the tiles (null: everyone's, for admins and viewers). */
  setOwner(owner) {
    const onlyComponents = ['!', ['has', 'count']];
    this.map.setFilter('components-points', owner
      ? ['all', onlyComponents, ['==', ['get', 'owner_key'], owner]] : onlyComponents);
  }

  /** The rows of the table's page, drawn on the map. */
  setRows(features) {
    this.map.getSource('page-rows').setData({ type: 'FeatureCollection', features: features
      .filter((f) => f.geometry).map((f) => ({ type: 'Feature', geometry: f.geometry, properties: { code: f.id } })) });
  }

  /** Highlight one component (a GeoJSON Feature) or none (null); `fly`: bring it into view. */
  select(feature, fly = false) {
    this.selectedCode = feature ? feature.id : null;
    this.map.getSource('component-selected').setData(feature
      ? { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: feature.geometry, properties: { code: feature.id } }] }
      : EMPTY);
    const at = feature && anchorOf(feature.geometry);
    if (fly && at) this.map.flyTo({ center: at, zoom: Math.max(this.map.getZoom(), 17), duration: 600 });
  }

  /** Fetch the component tiles again after an edit (a new URL: MapLibre drops the tiles it holds). */
  refresh() {
    this.version += 1;
    this.map.getSource('components').setTiles([tileUrl(this.version)]);
  }

  /** The component code under a screen point: the page's rows first, then the tiles' points. */
  codeAt(point) {
    const box = [[point.x - 5, point.y - 5], [point.x + 5, point.y + 5]];
    const layers = ['component-selected-point', 'page-rows-points', 'page-rows-lines', 'components-points']
      .filter((id) => this.map.getLayer(id));
    const hit = this.map.queryRenderedFeatures(box, { layers }).find((f) => f.properties.code);
    return hit ? String(hit.properties.code) : null;
  }

  /** Start moving: a draggable marker at `lngLat`; `onMove([lon, lat])` on every drag end or map click. */
  startMove(lngLat, onMove) {
    this.stopMove();
    this.marker = new maplibregl.Marker({ draggable: true, color: '#dc2626' }).setLngLat(lngLat).addTo(this.map);
    this.marker.getElement().setAttribute('aria-label', 'move');
    this.marker.on('dragend', () => { const p = this.marker.getLngLat(); onMove([p.lng, p.lat]); });
    this.moveClick = (event) => {
      this.marker.setLngLat(event.lngLat);
      onMove([event.lngLat.lng, event.lngLat.lat]);
    };
    this.map.on('click', this.moveClick);
    this.map.getCanvas().style.cursor = 'crosshair';
  }

  stopMove() {
    if (this.marker) this.marker.remove();
    if (this.moveClick) this.map.off('click', this.moveClick);
    this.marker = null;
    this.moveClick = null;
    if (this.map) this.map.getCanvas().style.cursor = '';
  }

  get moving() { return Boolean(this.marker); }
}
