-- Current grids of one kind as a GeoJSON FeatureCollection, built in PostGIS.
-- The kinds parameter is an array of grid kinds; the bbox parameters (all null or all set) narrow the
-- search through the current-geometry GiST index (&&).
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', COALESCE(json_agg(json_build_object(
        'type', 'Feature',
        'id', g.code,
        'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(gg.geom, :tolerance), 6)::json,
        'properties', json_build_object(
            'code', g.code, 'name', g.name, 'level', g.level, 'kind', g.kind, 'parent_code', g.parent_code)
    ) ORDER BY g.code), '[]'::json)
)::text
FROM grid_geometry gg
JOIN grid g ON g.code = gg.grid_code
WHERE gg.valid_to IS NULL
  AND gg.kind = ANY(:kinds)
  AND (CAST(:bbox_minx AS float8) IS NULL
       OR gg.geom && ST_MakeEnvelope(:bbox_minx, :bbox_miny, :bbox_maxx, :bbox_maxy, 4326))
