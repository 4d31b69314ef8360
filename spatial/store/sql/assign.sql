-- The spatial assignment of a batch of reports in one statement (bulk intake); see assign_core.sql.
WITH p AS (
    SELECT r.*, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326) AS g
    FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]), CAST(:categories AS varchar[]),
                CAST(:flows AS varchar[]), CAST(:handlers AS varchar[]), CAST(:enforcers AS varchar[]),
                CAST(:component_codes AS varchar[]), CAST(:classes AS varchar[]), CAST(:radius_deg AS float8[]),
                CAST(:radius_m AS float8[]), CAST(:dup_deg AS float8[]), CAST(:ats AS timestamptz[]),
                CAST(:trusts AS int[]))
         WITH ORDINALITY AS r(lon, lat, category, flow, handler, enforcer, component_code, classes, radius_deg,
                              radius_m, dup_deg, at, trust, n)
)
{{assign_core}}
ORDER BY n
