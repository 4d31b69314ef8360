-- Every current grid covering the point, of every level and kind, through the partial GiST index on
-- current geometries. The caller picks, per level, the smallest code (SPEC rule 1: on a shared edge the
-- grid with the smallest code wins), and takes the ancestors from the chosen base grid's code.
SELECT g.code, g.name, g.level, g.kind
FROM grid_geometry gg
JOIN grid g ON g.code = gg.grid_code
WHERE gg.valid_to IS NULL
  AND ST_Covers(gg.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY g.code
