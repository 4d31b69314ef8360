-- Parents of :level whose current children do not cover them exactly: the area (m², in the metric
-- CRS) of the symmetric difference between the parent and the union of its children.
WITH cur AS (
    SELECT g.code, g.level, g.parent_code, gg.geom
    FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL
    WHERE g.retired_at IS NULL AND g.code LIKE :prefix || '%'
), kids AS (
    SELECT parent_code, ST_Union(geom) AS geom, count(*) AS n
    FROM cur WHERE level = :level + 1 GROUP BY parent_code
)
SELECT p.code, COALESCE(k.n, 0) AS children,
       CASE WHEN k.geom IS NULL THEN ST_Area(ST_Transform(p.geom, 4549))
            ELSE ST_Area(ST_Transform(ST_SymDifference(p.geom, k.geom), 4549)) END AS mismatch_m2
FROM cur p LEFT JOIN kids k ON k.parent_code = p.code
WHERE p.level = :level
ORDER BY p.code
