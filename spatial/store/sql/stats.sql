-- Dataset counts for the landing page. Large tables use the planner's estimate (reltuples) so that
-- the call stays cheap at full scale; grids are counted exactly.
SELECT json_build_object(
    'districts', (SELECT count(*) FROM grid WHERE level = 1 AND retired_at IS NULL),
    'towns', (SELECT count(*) FROM grid WHERE level = 2 AND retired_at IS NULL),
    'communities', (SELECT count(*) FROM grid WHERE level = 3 AND retired_at IS NULL),
    'grids', (SELECT count(*) FROM grid WHERE level = 4 AND retired_at IS NULL),
    'special_grids', (SELECT count(*) FROM grid WHERE level IS NULL AND retired_at IS NULL),
    'components', (SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'component'::regclass),
    'cases', (SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = '"case"'::regclass)
)::text
