-- The current grid nearest to a point outside coverage (KNN on the GiST index), with its distance in
-- metres on the spheroid. Base grids first; districts that stop at town level answer with a town.
SELECT g.code, g.name, g.level, g.kind,
       ST_Distance(gg.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
FROM grid_geometry gg
JOIN grid g ON g.code = gg.grid_code
WHERE gg.valid_to IS NULL AND gg.kind IN ('base', 'town')
ORDER BY gg.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), gg.kind
LIMIT 1
