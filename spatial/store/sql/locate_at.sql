-- Every grid covering the point as of the instant :at (issue 19, time travel): the shapes whose validity
-- [valid_from, valid_to) holds :at, through the GiST index over all versions, with the names valid then
-- (grid_geometry.name, migration 0022). Same choice rule as locate.sql.
SELECT g.code, gg.name, g.level, g.kind
FROM grid_geometry gg
JOIN grid g ON g.code = gg.grid_code
WHERE gg.valid_from <= :at AND (gg.valid_to IS NULL OR gg.valid_to > :at)
  AND ST_Covers(gg.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY g.code
