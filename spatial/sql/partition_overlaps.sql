-- Pairs of current grids of one level whose interiors overlap by more than :tolerance_m2.
WITH cur AS (
    SELECT g.code, gg.geom
    FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL
    WHERE g.retired_at IS NULL AND g.level = :level AND g.code LIKE :prefix || '%'
)
SELECT a.code, b.code, ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4549)) AS overlap_m2
FROM cur a JOIN cur b ON a.code < b.code AND a.geom && b.geom
WHERE ST_Relate(a.geom, b.geom, '2********')
  AND ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4549)) > :tolerance_m2
