-- Insert one assigned case; the case number is the local report date plus the zero-padded id.
WITH new AS (SELECT nextval(pg_get_serial_sequence('"case"', 'id')) AS id)
INSERT INTO "case" (
    id, case_no, category_code, state, source, description, location, grid_code, community_code, town_code,
    district_code, special_grid_codes, grid_version_id, component_code, component_distance_m, owner_key,
    owner_area_code, deadline, duplicate_of, reporter_name, reporter_phone, idempotency_key, reported_at
)
SELECT new.id, to_char(CAST(:at AS timestamptz) AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || lpad(new.id::text, 8, '0'),
       :category, :state, :source, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :grid_code,
       :community_code, :town_code, :district_code, CAST(:special_grid_codes AS varchar[]),
       (SELECT gg.version_id FROM grid_geometry gg WHERE gg.grid_code = :grid_code AND gg.valid_to IS NULL),
       :component_code, :component_distance_m, :owner_key, :owner_area_code, :deadline, :duplicate_of,
       :reporter_name, :reporter_phone, :idempotency_key, :at
FROM new
RETURNING id
