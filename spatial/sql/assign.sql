-- The whole spatial assignment of one report in one statement (SPEC "Assignment rules"):
-- base grid (smallest code on shared edges) with its community, town and district; the special grids
-- covering the point; the component — the named one, or for component categories the nearest of a
-- matching class within :radius_m; and an open case of the same category within 50 m and 24 h (or on the
-- same component) to link as a duplicate. :radius_deg bounds the index search; metres decide.
WITH pt AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g
), covering AS (
    SELECT gg.grid_code, gg.kind
    FROM grid_geometry gg, pt
    WHERE gg.valid_to IS NULL AND gg.kind IN ('base', 'enterprise', 'park', 'scenic', 'commercial')
      AND ST_Covers(gg.geom, pt.g)
), base AS (
    SELECT min(grid_code) AS code FROM covering WHERE kind = 'base'
), named AS (
    SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code,
           ST_Distance(c.geom::geography, pt.g::geography) AS distance_m
    FROM component c, pt
    WHERE c.code = CAST(:component_code AS varchar)
), candidates AS (
    SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code, c.geom
    FROM component c, pt
    WHERE CAST(:component_code AS varchar) IS NULL AND CAST(:match_component AS boolean)
      AND c.status IN ('intact', 'damaged', 'missing')
      AND (CAST(:classes AS varchar[]) IS NULL OR c.class_code = ANY(CAST(:classes AS varchar[])))
      AND ST_DWithin(c.geom, pt.g, :radius_deg)
    ORDER BY c.geom <-> pt.g
    LIMIT 8
), nearest AS (
    SELECT code, class_code, owner_key, status, district_code, ST_Distance(geom::geography, pt.g::geography) AS distance_m
    FROM candidates, pt
    WHERE ST_Distance(geom::geography, pt.g::geography) <= :radius_m
    ORDER BY 6, code
    LIMIT 1
), bound AS (
    SELECT * FROM named UNION ALL SELECT * FROM nearest
), duplicate AS (
    SELECT k.id
    FROM "case" k, pt
    WHERE k.category_code = :category
      AND k.state NOT IN ('closed', 'voided')
      AND k.duplicate_of IS NULL
      AND k.reported_at > CAST(:at AS timestamptz) - interval '24 hours'
      AND k.reported_at <= CAST(:at AS timestamptz)
      AND (ST_DWithin(k.location, pt.g, :dup_deg)
           AND ST_Distance(k.location::geography, pt.g::geography) <= 50
           OR k.component_code = (SELECT code FROM bound LIMIT 1))
    ORDER BY k.reported_at, k.id
    LIMIT 1
)
SELECT base.code AS grid_code,
       b.code AS component_code, b.class_code AS component_class, b.owner_key AS component_owner,
       b.status AS component_status, b.district_code AS component_district, b.distance_m AS component_distance_m,
       (SELECT id FROM duplicate) AS duplicate_of,
       (SELECT json_agg(json_build_object('code', g.code, 'name', g.name, 'level', g.level) ORDER BY g.level)
          FROM grid g
         WHERE g.code IN (base.code, left(base.code, 12), left(base.code, 9), left(base.code, 6))) AS hierarchy,
       (SELECT json_agg(json_build_object('code', g.code, 'name', g.name, 'level', g.kind) ORDER BY g.code)
          FROM grid g WHERE g.code IN (SELECT grid_code FROM covering WHERE kind <> 'base')) AS specials
FROM base
LEFT JOIN LATERAL (SELECT * FROM bound LIMIT 1) b ON true
