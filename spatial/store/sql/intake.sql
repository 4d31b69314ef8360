-- One report → one assigned, stored case with its first events, in one statement (see assign_core.sql).
-- Nothing is inserted when the point is outside coverage or the reporter's area (:scope_area), or the named
-- component is unknown, retired or in another district: the assignment row then comes back with case_id NULL
-- for the caller to explain.
WITH p AS (
    SELECT CAST(1 AS bigint) AS n, CAST(:lon AS float8) AS lon, CAST(:lat AS float8) AS lat,
           CAST(:category AS varchar) AS category, CAST(:flow AS varchar) AS flow,
           CAST(:handler AS varchar) AS handler, CAST(:enforcer AS varchar) AS enforcer,
           CAST(:component_code AS varchar) AS component_code, CAST(:classes AS varchar) AS classes,
           CAST(:radius_deg AS float8) AS radius_deg, CAST(:radius_m AS float8) AS radius_m,
           CAST(:dup_deg AS float8) AS dup_deg, CAST(:at AS timestamptz) AS at, CAST(:trust AS int) AS trust,
           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g
), a AS (
{{assign_core}}
), ok AS (
    SELECT a.*, nextval(pg_get_serial_sequence('"case"', 'id')) AS case_id FROM a
    WHERE a.grid_code IS NOT NULL
      -- the reporter's area (spatial/access/scope.py): a prefix of the base grid code, or one of its special grids
      AND (CAST(:scope_area AS varchar) IS NULL
           OR left(a.grid_code, length(CAST(:scope_area AS varchar))) = CAST(:scope_area AS varchar)
           OR CAST(:scope_area AS varchar) = ANY(a.special_grid_codes))
      AND (a.requested_component IS NULL
           OR (a.component_code IS NOT NULL AND a.component_status NOT IN ('abandoned', 'removed')
               AND a.component_district = left(a.grid_code, 6)))
), ins AS (
    INSERT INTO "case" (
        id, case_no, category_code, state, source, description, location, grid_code, community_code, town_code,
        district_code, special_grid_codes, grid_version_id, component_code, component_distance_m, owner_key,
        owner_area_code, deadline, duplicate_of, reporter_name, reporter_phone, idempotency_key, reported_at)
    SELECT ok.case_id, to_char(ok.at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || lpad(ok.case_id::text, 8, '0'),
           ok.category, CASE WHEN ok.duplicate_of IS NULL THEN 'reported' ELSE 'voided' END, :source,
           :description, ST_SetSRID(ST_MakePoint(ok.lon, ok.lat), 4326), ok.grid_code, left(ok.grid_code, 12),
           left(ok.grid_code, 9), left(ok.grid_code, 6), ok.special_grid_codes,
           (SELECT gg.version_id FROM grid_geometry gg WHERE gg.grid_code = ok.grid_code AND gg.valid_to IS NULL),
           ok.component_code, ok.component_distance_m, ok.owner_key, ok.owner_area_code, CAST(:deadline AS timestamptz),
           ok.duplicate_of, :reporter_name, :reporter_phone, :idempotency_key, ok.at
    FROM ok
    RETURNING id, case_no
), ev AS (
    INSERT INTO case_event (case_id, at, kind, state_after, actor, note, data)
    SELECT ins.id, ok.at, e.kind, e.state, e.actor, e.note, e.data
    FROM ins, ok, LATERAL (VALUES
        ('report', 'reported', CAST(:actor AS text), CAST(NULL AS text),
         jsonb_build_object('grid', ok.grid_code, 'owner', ok.owner_key, 'component', ok.component_code)),
        ('link', 'voided', 'system', '重复上报，已关联原案件 ' || ok.duplicate_of,
         jsonb_build_object('duplicate_of', ok.duplicate_of))
    ) AS e(kind, state, actor, note, data)
    WHERE e.kind = 'report' OR ok.duplicate_of IS NOT NULL
), audit AS (
    -- spatial/access/audit.py: the write's audit row, in the same statement
    INSERT INTO audit_log (actor, role, action, target, client, detail)
    SELECT :audit_who, :audit_role, 'case.create', ins.case_no, :audit_client,
           jsonb_build_object('id', ins.id, 'channel', CAST(:actor AS text))
    FROM ins
)
SELECT a.*, ins.id AS case_id, ins.case_no FROM a LEFT JOIN ins ON true
