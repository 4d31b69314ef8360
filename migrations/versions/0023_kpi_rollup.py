"""Issue 17 item 5: a rollup of the evaluation per (day, base grid, unit), kept on write, so that a year's KPIs
sum about 10^5 small rows instead of judging ~5·10^5 cases.

``kpi_rollup`` holds, per bucket of report dates — ``span`` 'd' a local day, 'm' a local month (``day`` its
first day; Asia/Shanghai, the working calendar's zone) — per base grid (``grid_code``), per unit
(``unit_key``) and per part (``lead``: the cases the unit leads, keyed by ``case.owner_key``; else its
assisting rows of ``case_unit``), the *final* judgment of its cases: the counts of spatial/cases/kpi.py as
they stand once every event and deadline of the case lies in the past (``gridlink_kpi_final``,
``gridlink_kpi_assist_final``). A period ending later than all of a case's events and deadlines judges the
case exactly so; kpi.py corrects the few cases of a period that are not yet settled at its end (and the
partial days at its edges) from the cases themselves.

Kept by statement-level triggers with transition tables on ``case`` (INSERT, UPDATE, DELETE) and
``case_unit`` (the same), in the writing transaction: each statement's rows are judged before and after, the
differences summed per rollup row and applied as increments in key order (``INSERT … ON CONFLICT DO UPDATE``),
so concurrent writers never overwrite each other and take the rows' locks in one order. The evaluation
summary's trigger (migration 0020) writes ``case.kpi_*`` with an UPDATE of the case, so every event the
evaluation reads reaches the rollup along the same path. ``TRUNCATE`` of ``case`` empties the rollup (of
``case_unit``: its assisting rows). The triggers fire ALWAYS (bulk loads run as replica) and step aside when
``gridlink.case_kpi = 'deferred'`` (the demo loader): such a loader ends with ``gridlink_kpi_rollup_rebuild()``,
which is also this migration's backfill and repairs any drift (it returns the number of rows it had to fix).

Revision ID: 0023_kpi_rollup
Revises: 0022_assist_orders
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_kpi_rollup"
down_revision = "0022_assist_orders"
branch_labels = None
depends_on = None

ZONE = "Asia/Shanghai"  # the working calendar's zone (spatial/reference/calendar.py): local report dates
KEY = ("span", "day", "grid_code", "unit_key", "lead")
LEAD = ("reported", "registered", "voided", "suspended", "due", "closed", "closed_on_time", "handled",
        "handled_on_time", "reworked")
ASSIST = ("assisting", "assist_due", "assist_handled", "assist_handled_on_time")
COUNTS = (*LEAD, *ASSIST)

# A case's judgment once settled (kpi.py's rules with the period's end beyond every event and deadline):
# registered, not voided, not suspended ("live"); due once it has a deadline or is closed.
FINAL = """
CREATE OR REPLACE FUNCTION gridlink_kpi_final(
    registered_at timestamptz, state_at timestamptz, closed_at timestamptz, handled_state_at timestamptz,
    voided_at timestamptz, suspended_at timestamptz, handled_at timestamptz, reworks integer,
    deadline timestamptz,
    OUT registered integer, OUT voided integer, OUT suspended integer, OUT due integer, OUT closed integer,
    OUT closed_on_time integer, OUT handled integer, OUT handled_on_time integer, OUT reworked integer,
    OUT live boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT j.is_registered::int, j.is_voided::int, j.is_suspended::int, j.is_due::int,
           (j.is_due AND j.is_closed)::int,
           (j.is_due AND j.is_closed AND coalesce(closed_at <= deadline, false))::int,
           (j.is_due AND j.is_handled)::int,
           (j.is_due AND j.is_handled AND coalesce(handled_at <= deadline, false))::int,
           (j.is_due AND reworks > 0)::int,
           j.is_live
    FROM (SELECT r.*, r.is_live AND (deadline IS NOT NULL OR r.is_closed) AS is_due
          FROM (SELECT registered_at IS NOT NULL AS is_registered,
                       coalesce(voided_at = state_at, false) AS is_voided,
                       coalesce(suspended_at = state_at, false) AS is_suspended,
                       coalesce(closed_at = state_at, false) AS is_closed,
                       coalesce(closed_at = state_at OR handled_state_at = state_at, false) AS is_handled,
                       registered_at IS NOT NULL AND NOT coalesce(voided_at = state_at, false)
                         AND NOT coalesce(suspended_at = state_at, false) AS is_live) r) j
$$;
"""
# An assisting unit's row once settled: due when its case is live and it has a deadline or fed back.
ASSIST_FINAL = """
CREATE OR REPLACE FUNCTION gridlink_kpi_assist_final(
    live boolean, deadline timestamptz, handled_at timestamptz,
    OUT assist_due integer, OUT assist_handled integer, OUT assist_handled_on_time integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT x.d::int, (x.d AND handled_at IS NOT NULL)::int, (x.d AND coalesce(handled_at <= deadline, false))::int
    FROM (SELECT live AND (deadline IS NOT NULL OR handled_at IS NOT NULL) AS d) x
$$;
"""
BUCKETS = f"""CROSS JOIN (VALUES ('d'), ('m')) b(span)
  CROSS JOIN LATERAL (SELECT CASE b.span WHEN 'd' THEN (c.reported_at AT TIME ZONE '{ZONE}')::date
                      ELSE date_trunc('month', c.reported_at AT TIME ZONE '{ZONE}')::date END AS day) k"""
JUDGE = """CROSS JOIN LATERAL gridlink_kpi_final(c.kpi_registered_at, c.kpi_state_at, c.kpi_closed_at,
      c.kpi_handled_state_at, c.kpi_voided_at, c.kpi_suspended_at, c.kpi_handled_at, c.kpi_reworks, c.deadline) f"""
LEAD_ROWS = ("SELECT b.span, k.day, c.grid_code, c.owner_key AS unit_key, true AS lead, c.s AS reported, "
             + ", ".join(f"c.s * f.{n} AS {n}" for n in LEAD[1:]) + ", " + ", ".join(f"0 AS {n}" for n in ASSIST)
             + "\n  FROM {cases} c " + JUDGE + "\n  " + BUCKETS)
ASSIST_COLUMNS = ("SELECT b.span, k.day, c.grid_code, u.unit_key, false AS lead, "
                  + ", ".join(f"0 AS {n}" for n in LEAD) + ", {s} AS assisting, "
                  + ", ".join(f"{{s}} * a.{n} AS {n}" for n in ASSIST[1:]))
ASSIST_TAIL = ("\n  " + JUDGE + "\n  CROSS JOIN LATERAL gridlink_kpi_assist_final(f.live, u.deadline, u.handled_at) a"
               "\n  " + BUCKETS)
# Assisting rows seen from the case (its judgment changed) and from the unit (its row changed).
ASSIST_BY_CASE = ASSIST_COLUMNS.format(s="c.s") + "\n  FROM {cases} c JOIN case_unit u ON u.case_id = c.id" + ASSIST_TAIL
ASSIST_BY_UNIT = ASSIST_COLUMNS.format(s="u.s") + '\n  FROM {units} u JOIN "case" c ON c.id = u.case_id' + ASSIST_TAIL


def _apply(rows: str) -> str:
    """Sum ``rows`` (signed contributions) per rollup row and add them, in key order."""
    keys = ", ".join(KEY)
    return (f"INSERT INTO kpi_rollup ({keys}, {', '.join(COUNTS)})\n"
            f"  SELECT {keys}, {', '.join(f'sum({n})' for n in COUNTS)} FROM ({rows}) d\n"
            f"  GROUP BY {keys} HAVING {' OR '.join(f'sum({n}) <> 0' for n in COUNTS)} ORDER BY {keys}\n"
            f"  ON CONFLICT ({keys}) DO UPDATE SET "
            + ", ".join(f"{n} = kpi_rollup.{n} + EXCLUDED.{n}" for n in COUNTS))


def _signed(table: str, sign: int) -> str:
    return f"(SELECT t.*, {sign} AS s FROM {table} t)"


def _both(new: str, old: str) -> str:
    return f"(SELECT t.*, 1 AS s FROM {new} t UNION ALL SELECT t.*, -1 AS s FROM {old} t)"


def _case_delta(cases: str) -> str:
    return _apply(LEAD_ROWS.format(cases=cases) + "\n  UNION ALL\n" + ASSIST_BY_CASE.format(cases=cases))


CASE_TRIGGER = f"""
CREATE OR REPLACE FUNCTION gridlink_kpi_rollup_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gridlink.case_kpi', true) IS NOT DISTINCT FROM 'deferred' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        {_apply(LEAD_ROWS.format(cases=_signed('new_rows', 1)))};
    ELSIF TG_OP = 'UPDATE' THEN
        {_case_delta(_both('new_rows', 'old_rows'))};
    ELSE
        {_case_delta(_signed('old_rows', -1))};
    END IF;
    RETURN NULL;
END $$;
"""
UNIT_TRIGGER = f"""
CREATE OR REPLACE FUNCTION gridlink_kpi_rollup_unit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gridlink.case_kpi', true) IS NOT DISTINCT FROM 'deferred' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        {_apply(ASSIST_BY_UNIT.format(units=_signed('new_rows', 1)))};
    ELSIF TG_OP = 'UPDATE' THEN
        {_apply(ASSIST_BY_UNIT.format(units=_both('new_rows', 'old_rows')))};
    ELSE
        {_apply(ASSIST_BY_UNIT.format(units=_signed('old_rows', -1)))};
    END IF;
    RETURN NULL;
END $$;
"""
TRUNCATED = """
CREATE OR REPLACE FUNCTION gridlink_kpi_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'case' THEN
        TRUNCATE kpi_rollup;
    ELSE
        DELETE FROM kpi_rollup WHERE NOT lead;
    END IF;
    RETURN NULL;
END $$;
"""
_FRESH_ROWS = (LEAD_ROWS.format(cases=_signed('"case"', 1)) + "\n  UNION ALL\n"
               + ASSIST_BY_UNIT.format(units=_signed("case_unit", 1)))
_SAME_KEY = " AND ".join(f"f.{k} = r.{k}" for k in KEY)
_SAME_COUNTS = f"({', '.join(f'f.{n}' for n in COUNTS)}) = ({', '.join(f'r.{n}' for n in COUNTS)})"
_ZERO = f"({', '.join(f'r.{n}' for n in COUNTS)}) = ({', '.join('0' for _ in COUNTS)})"
REBUILD = f"""
CREATE OR REPLACE FUNCTION gridlink_kpi_rollup_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
    orphans bigint;
BEGIN
    -- Writers wait (their increments then apply to the fresh rows); readers go on.
    LOCK TABLE kpi_rollup IN EXCLUSIVE MODE;
    DROP TABLE IF EXISTS pg_temp.kpi_rollup_fresh;
    CREATE TEMP TABLE kpi_rollup_fresh ON COMMIT DROP AS
        SELECT {', '.join(KEY)}, {', '.join(f'sum({n})::integer AS {n}' for n in COUNTS)}
        FROM ({_FRESH_ROWS}) d GROUP BY {', '.join(KEY)}
        HAVING {' OR '.join(f'sum({n}) <> 0' for n in COUNTS)};
    WITH gone AS (
        DELETE FROM kpi_rollup r WHERE NOT EXISTS (
            SELECT 1 FROM kpi_rollup_fresh f WHERE {_SAME_KEY} AND {_SAME_COUNTS})
        RETURNING r.*
    )
    SELECT count(*) INTO orphans FROM gone r
    WHERE NOT {_ZERO} AND NOT EXISTS (SELECT 1 FROM kpi_rollup_fresh f WHERE {_SAME_KEY});
    INSERT INTO kpi_rollup ({', '.join(KEY)}, {', '.join(COUNTS)})
        SELECT f.* FROM kpi_rollup_fresh f
        WHERE NOT EXISTS (SELECT 1 FROM kpi_rollup r WHERE {_SAME_KEY});
    GET DIAGNOSTICS added = ROW_COUNT;
    DROP TABLE kpi_rollup_fresh;
    RETURN added + orphans;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "kpi_rollup",
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_code", sa.String(15), nullable=False),
        sa.Column("unit_key", sa.String(32), nullable=False),
        sa.Column("lead", sa.Boolean(), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False, server_default="0") for n in COUNTS),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_kpi_rollup")),
        sa.CheckConstraint("span IN ('d', 'm')", name=op.f("ck_kpi_rollup_span")),
    )
    # The cases not yet settled at a period's end (kpi.py corrects them): an event or the deadline after it.
    op.execute('CREATE INDEX ix_case_kpi_settles ON "case" ((greatest(kpi_through, deadline)))')
    op.execute("CREATE INDEX ix_case_unit_kpi_settles ON case_unit ((greatest(deadline, handled_at, dispatched_at)))")
    for sql in (FINAL, ASSIST_FINAL, CASE_TRIGGER, UNIT_TRIGGER, TRUNCATED, REBUILD):
        op.execute(sql)
    op.execute("SELECT gridlink_kpi_rollup_rebuild()")
    # Statistics for the new table and the new expression index (the planner's choice of the cases to judge).
    op.execute("ANALYZE kpi_rollup")
    op.execute('ANALYZE "case"')
    for table, function in (('"case"', "gridlink_kpi_rollup_case"), ("case_unit", "gridlink_kpi_rollup_unit")):
        name = "case" if table == '"case"' else "case_unit"
        op.execute(f"CREATE TRIGGER {name}_kpi_rollup_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {name}_kpi_rollup_update AFTER UPDATE ON {table}"
                   f" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {name}_kpi_rollup_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {name}_kpi_rollup_truncate AFTER TRUNCATE ON {table}"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION gridlink_kpi_rollup_truncated()")
        for kind in ("insert", "update", "delete", "truncate"):
            op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}_kpi_rollup_{kind}")


def downgrade() -> None:
    for table, name in (('"case"', "case"), ("case_unit", "case_unit")):
        for kind in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_kpi_rollup_{kind} ON {table}")
    for function in ("gridlink_kpi_rollup_case()", "gridlink_kpi_rollup_unit()", "gridlink_kpi_rollup_truncated()",
                     "gridlink_kpi_rollup_rebuild()", "gridlink_kpi_assist_final(boolean, timestamptz, timestamptz)",
                     "gridlink_kpi_final(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz,"
                     " timestamptz, integer, timestamptz)"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP INDEX IF EXISTS ix_case_unit_kpi_settles")
    op.execute("DROP INDEX IF EXISTS ix_case_kpi_settles")
    op.drop_table("kpi_rollup")
