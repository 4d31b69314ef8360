// The small map of gridlink's OGC HTML pages (templates/collections/…): a collection's extent and first
// items, or the features of a page of items, or one item. Everything it needs comes from the map element's
// data- attributes (data-bbox, data-items, data-features, data-tiles, data-attribution); Leaflet is the
// pinned copy under static/vendor. Base-map tiles are decoration: offline, the features still show.
"use strict";
(function () {
  var node = document.getElementById("gl-map");
  if (!node || typeof L === "undefined") { return; }
  var map = L.map(node, { scrollWheelZoom: false });
  if (node.dataset.tiles) {
    L.tileLayer(node.dataset.tiles, { maxZoom: 19, attribution: node.dataset.attribution || "" }).addTo(map);
  }
  var style = { color: "#c0392b", weight: 2, fillOpacity: 0.15 };
  var point = function (feature, latlng) { return L.circleMarker(latlng, { radius: 5, color: "#c0392b" }); };
  var shown = L.geoJSON(null, { style: style, pointToLayer: point }).addTo(map);
  var fit = function (bounds) { if (bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 16 }); } };
  if (node.dataset.bbox) {
    var b = JSON.parse(node.dataset.bbox);
    var extent = L.rectangle([[b[1], b[0]], [b[3], b[2]]], { color: "#2c3e50", weight: 1, fill: false }).addTo(map);
    fit(extent.getBounds());
  }
  if (node.dataset.features) {
    shown.addData(JSON.parse(node.dataset.features));
    fit(shown.getBounds());
  }
  if (node.dataset.items) {
    fetch(node.dataset.items, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (reply) { return reply.ok ? reply.json() : null; })
      .then(function (page) { if (page && page.features) { shown.addData(page.features); } })
      .catch(function () { /* the extent alone is shown */ });
  }
  node.classList.add("gl-map-ready");
})();
