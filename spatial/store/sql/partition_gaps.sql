-- Parents of :level whose current children do not cover them exactly: the area in m² of the symmetric
-- difference between the parent and the union of its children. The area is measured in degrees and
-- scaled at the difference's latitude: projecting first would bend long straight edges and turn the
-- zero-width seams between parent and children into false slivers.
WITH cur AS (
    SELECT g.code, g.level, g.parent_code, gg.geom
    FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL
    WHERE g.retired_at IS NULL AND g.code LIKE :prefix || '%'
), kids AS (
    SELECT parent_code, ST_Union(geom) AS geom, count(*) AS n
    FROM cur WHERE level = :level + 1 GROUP BY parent_code
)
SELECT p.code, COALESCE(k.n, 0) AS children,
       CASE WHEN k.geom IS NULL THEN ST_Area(p.geom::geography)
            ELSE (SELECT COALESCE(ST_Area(d) * 111320.0 * 110574.0 * cos(radians(ST_Y(ST_Centroid(d)))), 0)
                  FROM ST_SymDifference(p.geom, k.geom) AS d) END AS mismatch_m2
FROM cur p LEFT JOIN kids k ON k.parent_code = p.code
WHERE p.level = :level
ORDER BY p.code
