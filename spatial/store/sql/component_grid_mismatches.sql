-- Components whose grid_code is not the base grid covering their anchor (ST_PointOnSurface); on a
-- shared edge the smallest code wins (SPEC assignment rule 1). Uses the current-geometry GiST index.
SELECT c.code, c.grid_code,
       (SELECT gg.grid_code FROM grid_geometry gg
         WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND ST_Covers(gg.geom, ST_PointOnSurface(c.geom))
         ORDER BY gg.grid_code LIMIT 1) AS covering
FROM component c
WHERE c.code LIKE :prefix || '%'
  AND c.grid_code IS DISTINCT FROM (
      SELECT gg.grid_code FROM grid_geometry gg
       WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND ST_Covers(gg.geom, ST_PointOnSurface(c.geom))
       ORDER BY gg.grid_code LIMIT 1)
LIMIT 100
