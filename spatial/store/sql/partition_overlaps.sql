-- Pairs of current grids of one level whose interiors overlap by more than :tolerance_m2.
WITH cur AS (
    SELECT g.code, gg.geom
    FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL
    WHERE g.retired_at IS NULL AND g.level = :level AND g.code LIKE :prefix || '%'
)
-- Areas in degrees scaled at the overlap's latitude (see partition_gaps.sql for why not projected).
SELECT a.code, b.code, o.m2 AS overlap_m2
FROM cur a JOIN cur b ON a.code < b.code AND a.geom && b.geom
CROSS JOIN LATERAL (
    SELECT COALESCE(ST_Area(i) * 111320.0 * 110574.0 * cos(radians(ST_Y(ST_Centroid(i)))), 0) AS m2
    FROM ST_Intersection(a.geom, b.geom) AS i
) o
WHERE ST_Relate(a.geom, b.geom, '2********') AND o.m2 > :tolerance_m2
