-- Included by assign.sql (a batch) and intake.sql (one report): the spatial assignment of every row of
-- the CTE "p" (SPEC "Assignment rules"). Per row:
--   base grid covering the point (on a shared edge the smallest code wins); the special grids covering it;
--   the component: the named one, or for component categories the nearest of a matching class within
--   radius_m (radius_deg only bounds the GiST search; metres on the sphere decide);
--   an open case of the same category within 50 m and 24 h, or on the same component, to link — only one
--   trusted at least as much as the report (p.trust; the stored case's trust is the CASE below, the twin of
--   spatial/cases/assignment/rules.py: TRUST and trust_of — a verified case, past 'reported', is trusted);
--   the owner by the category's flow, the town sub-centre being the owner of last resort (属地兜底).
-- :dup_from and :dup_to bound the nearby duplicate probe's report times over the whole statement (a report's
-- own 24 hours, or the batch's span): "case" is partitioned by month of reported_at, and bounds given as
-- parameters let the executor drop the other months before it starts (initial pruning, also in the intake's
-- generic prepared plan), where p.at, a value of each row, prunes nothing until the scan.
-- The owner CASE has a Python twin, spatial/cases/assignment/owner.py (batch path, demo); the two are held
-- together by tests/integration/test_owner_parity.py on every leaf category.
SELECT a.*,
       CASE WHEN a.flow = 'component' AND a.component_owner IS NOT NULL THEN a.component_owner
            WHEN a.flow = 'component' THEN 'TOWN'
            WHEN a.flow = 'grid_first' THEN 'GRID_CHIEF'
            WHEN a.flow = 'enforcement' THEN COALESCE(a.enforcer, 'ENFORCE')
            WHEN a.handler IN ('TOWN', 'COMPONENT_OWNER') THEN 'TOWN'
            ELSE a.handler END AS owner_key,
       CASE WHEN a.flow = 'component' AND a.component_owner IS NOT NULL THEN NULL
            WHEN a.flow = 'grid_first' THEN a.grid_code
            WHEN a.flow IN ('component', 'enforcement') OR a.handler IN ('TOWN', 'COMPONENT_OWNER')
                THEN left(a.grid_code, 9)
            END AS owner_area_code
FROM (
    SELECT p.n, p.lon, p.lat, p.at, p.category, p.flow, p.handler, p.enforcer,
           p.component_code AS requested_component, base.code AS grid_code,
           COALESCE(sp.codes, CAST('{}' AS varchar[])) AS special_grid_codes,
           b.code AS component_code, b.class_code AS component_class, b.owner_key AS component_owner,
           b.status AS component_status, b.district_code AS component_district,
           b.distance_m AS component_distance_m, COALESCE(same_component.id, nearby.id) AS duplicate_of
    FROM p
    LEFT JOIN LATERAL (
        SELECT min(gg.grid_code) AS code FROM grid_geometry gg
        WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND ST_Covers(gg.geom, p.g)
    ) base ON true
    LEFT JOIN LATERAL (
        SELECT array_agg(gg.grid_code ORDER BY gg.grid_code) AS codes FROM grid_geometry gg
        WHERE gg.valid_to IS NULL AND gg.kind IN {{SPECIAL_KINDS}}
          AND ST_Covers(gg.geom, p.g)
    ) sp ON true
    LEFT JOIN LATERAL (
        (SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code,
                ST_Distance(c.geom::geography, p.g::geography, false) AS distance_m
         FROM component c WHERE c.code = p.component_code)
        UNION ALL
        (SELECT cand.code, cand.class_code, cand.owner_key, cand.status, cand.district_code, cand.distance_m
         FROM (SELECT c.code, c.class_code, c.owner_key, c.status, c.district_code,
                      ST_Distance(c.geom::geography, p.g::geography, false) AS distance_m
               FROM component c
               WHERE p.component_code IS NULL AND p.flow = 'component'
                 AND c.status IN ('intact', 'damaged', 'missing')
                 AND (p.classes IS NULL OR c.class_code = ANY(string_to_array(p.classes, ',')))
                 AND ST_DWithin(c.geom, p.g, p.radius_deg)
               ORDER BY c.geom <-> p.g
               LIMIT 8) cand
         WHERE cand.distance_m <= p.radius_m
         ORDER BY cand.distance_m, cand.code
         LIMIT 1)
        LIMIT 1
    ) b ON true
    LEFT JOIN LATERAL (
        -- Open originals only (partial indexes): a duplicate links to an original, never to a duplicate.
        -- Only when the report has a component (b.code IS NOT NULL: a one-time filter; without it the probe
        -- read every case of the category in the 24 hours to find none), through the component's open cases
        -- (ix_case_open_component_code, component and report time: migration 0037). The category is written
        -- so that its B-tree cannot take over; the window's months are bounded by :dup_from and :dup_to (the
        -- executor drops the other months before it starts), a range of the component index's second column.
        SELECT k.id FROM "case" k
        WHERE b.code IS NOT NULL AND k.state NOT IN ('closed', 'voided') AND k.duplicate_of IS NULL
          AND k.component_code = b.code AND k.category_code || '' = p.category
          AND p.at - k.reported_at < interval '24 hours' AND k.reported_at - p.at <= interval '0'
          AND k.reported_at > CAST(:dup_from AS timestamptz) AND k.reported_at <= CAST(:dup_to AS timestamptz)
          AND CASE WHEN k.state <> 'reported' OR k.source IN ('inspector', 'dispatcher', 'video') THEN 2
                   WHEN k.source = 'hotline' THEN 1 ELSE 0 END >= p.trust
        ORDER BY k.reported_at, k.id
        LIMIT 1
    ) same_component ON true
    LEFT JOIN LATERAL (
        -- The nearest open original of the category within 50 m: KNN on the GiST index of open originals'
        -- locations, the category checked on the few cases that near. The category and the time window are
        -- written so that the (category, reported_at) B-tree cannot take over (:dup_from and :dup_to are for
        -- the months only).
        SELECT k.id FROM "case" k
        WHERE k.state NOT IN ('closed', 'voided') AND k.duplicate_of IS NULL
          AND k.category_code || '' = p.category
          AND p.at - k.reported_at < interval '24 hours' AND p.at >= k.reported_at
          AND k.reported_at > CAST(:dup_from AS timestamptz) AND k.reported_at <= CAST(:dup_to AS timestamptz)
          AND ST_DWithin(k.location, p.g, p.dup_deg)
          AND ST_DWithin(k.location::geography, p.g::geography, 50, false)
          AND CASE WHEN k.state <> 'reported' OR k.source IN ('inspector', 'dispatcher', 'video') THEN 2
                   WHEN k.source = 'hotline' THEN 1 ELSE 0 END >= p.trust
        ORDER BY k.location <-> p.g, k.id
        LIMIT 1
    ) nearby ON true
) a
