"""The evaluation's summary trigger finds its case's month before its UPDATE starts (issue 22, measured).

``gridlink_case_kpi`` (on every event of ``case_event``, migration 0020; by month since 0031) updated its case
``WHERE id = NEW.case_id AND reported_at = (SELECT k.reported_at FROM case_key k WHERE k.id = NEW.case_id)``. A
sub-select is known only while the statement runs, so the UPDATE started (locked and opened, with every index)
each of the 19 months of ``"case"`` and pruned only afterwards. On the intake benchmark's copy after its
sustained phase that cost 13 ms per event (2,000 updates in 26.5 s; a bulk of 100,000 reports spent 137 s in
its events' COPY and ran past the request's statement timeout), against 0.28 ms with the month known at the
start.

``gridlink_case_month(id)`` is a STABLE function of the id: the executor evaluates it when the UPDATE starts and
drops the other months then (initial pruning), also in the function's cached generic plan. The same 2,000
updates: 0.56 s.

Revision ID: 0033_case_month_function
Revises: 0032_open_location_with_time
"""

from alembic import op
from sqlalchemy import text

revision = "0033_case_month_function"
down_revision = "0032_open_location_with_time"
branch_labels = None
depends_on = None

SUBSELECT = "reported_at = (SELECT k.reported_at FROM case_key k WHERE k.id = NEW.case_id);"
FUNCTION = "reported_at = gridlink_case_month(NEW.case_id);"


def _rewrite(old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in gridlink_case_kpi's definition, as the catalogue holds it."""
    definition = op.get_bind().execute(
        text("SELECT pg_get_functiondef(CAST('gridlink_case_kpi()' AS regprocedure))")).scalar()
    if definition.count(old) != 1:
        raise RuntimeError(f"gridlink_case_kpi does not hold {old!r} once: not the function this migration knows")
    op.execute(definition.replace(old, new))


def upgrade() -> None:
    op.execute("CREATE FUNCTION gridlink_case_month(bigint) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE"
               " AS 'SELECT reported_at FROM case_key WHERE id = $1'")
    _rewrite(SUBSELECT, FUNCTION)


def downgrade() -> None:
    _rewrite(FUNCTION, SUBSELECT)
    op.execute("DROP FUNCTION gridlink_case_month(bigint)")
