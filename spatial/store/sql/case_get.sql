-- Cases by id, as the API shows them (grid names come from the reference cache). :months: the cases'
-- reported_at read from case_key first (spatial/cases/rows.py), so that the planner reads only their months of
-- "case" (plan-time pruning: the values are constants); NULL reads every month (a case moved meanwhile).
SELECT k.id, k.case_no, k.state, k.category_code, k.source, k.description,
       ST_X(k.location) AS lon, ST_Y(k.location) AS lat,
       k.grid_code, k.community_code, k.town_code, k.district_code, k.special_grid_codes,
       k.component_code, c.class_code AS component_class, k.component_distance_m,
       k.owner_key, k.owner_area_code, k.deadline, k.duplicate_of, k.reported_at, k.created_at, k.closed_at,
       k.reporter_name, k.reporter_phone, k.idempotency_key, k.revision, k.step_deadline, k.pending_action,
       k.assist_keys
FROM "case" k
LEFT JOIN component c ON c.code = k.component_code
WHERE k.id = ANY(CAST(:ids AS bigint[]))
  AND (CAST(:months AS timestamptz[]) IS NULL OR k.reported_at = ANY(CAST(:months AS timestamptz[])))
