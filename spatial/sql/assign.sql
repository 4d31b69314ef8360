-- The whole spatial assignment of a batch of reports in one statement (SPEC "Assignment rules"); a single
-- report is a batch of one. Per report:
--   base grid covering the point (on a shared edge the smallest code wins) with community/town/district;
--   the special grids covering it;
--   the component: the named one, or for component categories the nearest of a matching class within
--   :radius_m (radius_deg only bounds the GiST search; metres on the spheroid decide);
--   an open case of the same category within 50 m and 24 h, or on the same component, to link.
WITH p AS (
    SELECT r.*, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326) AS g
    FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]), CAST(:categories AS varchar[]),
                CAST(:component_codes AS varchar[]), CAST(:match_component AS boolean[]),
                CAST(:classes AS varchar[]), CAST(:radius_deg AS float8[]), CAST(:dup_deg AS float8[]),
                CAST(:ats AS timestamptz[]))
         WITH ORDINALITY AS r(lon, lat, category, component_code, match_component, classes, radius_deg, dup_deg,
                              at, n)
)
SELECT p.n, base.code AS grid_code, sp.codes AS special_grid_codes, sp.areas AS specials,
       b.code AS component_code, b.class_code AS component_class, b.owner_key AS component_owner,
       b.status AS component_status, b.district_code AS component_district, b.distance_m AS component_distance_m,
       dup.id AS duplicate_of, h.areas AS hierarchy
FROM p
LEFT JOIN LATERAL (
    SELECT min(gg.grid_code) AS code FROM grid_geometry gg
    WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND ST_Covers(gg.geom, p.g)
) base ON true
LEFT JOIN LATERAL (
    SELECT array_agg(g.code ORDER BY g.code) AS codes,
           json_agg(json_build_object('code', g.code, 'name', g.name, 'level', g.kind) ORDER BY g.code) AS areas
    FROM grid_geometry gg JOIN grid g ON g.code = gg.grid_code
    WHERE gg.valid_to IS NULL AND gg.kind IN ('enterprise', 'park', 'scenic', 'commercial')
      AND ST_Covers(gg.geom, p.g)
) sp ON true
LEFT JOIN LATERAL (
    (SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code,
            ST_Distance(c.geom::geography, p.g::geography) AS distance_m
     FROM component c WHERE c.code = p.component_code)
    UNION ALL
    (SELECT cand.code, cand.class_code, cand.owner_key, cand.status, cand.district_code, cand.distance_m
     FROM (SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code,
                  ST_Distance(c.geom::geography, p.g::geography) AS distance_m
           FROM component c
           WHERE p.component_code IS NULL AND p.match_component
             AND c.status IN ('intact', 'damaged', 'missing')
             AND (p.classes IS NULL OR c.class_code = ANY(string_to_array(p.classes, ',')))
             AND ST_DWithin(c.geom, p.g, p.radius_deg)
           ORDER BY c.geom <-> p.g
           LIMIT 8) cand
     WHERE cand.distance_m <= :radius_m
     ORDER BY cand.distance_m, cand.code
     LIMIT 1)
    LIMIT 1
) b ON true
LEFT JOIN LATERAL (
    SELECT k.id FROM "case" k
    WHERE k.category_code = p.category
      AND k.state NOT IN ('closed', 'voided')
      AND k.duplicate_of IS NULL
      AND k.reported_at > p.at - interval '24 hours' AND k.reported_at <= p.at
      AND (ST_DWithin(k.location, p.g, p.dup_deg) AND ST_Distance(k.location::geography, p.g::geography) <= 50
           OR k.component_code = b.code)
    ORDER BY k.reported_at, k.id
    LIMIT 1
) dup ON true
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('code', g.code, 'name', g.name, 'level', g.level) ORDER BY g.level) AS areas
    FROM grid g
    WHERE g.code IN (base.code, left(base.code, 12), left(base.code, 9), left(base.code, 6))
) h ON true
ORDER BY p.n
