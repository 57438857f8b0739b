"""daily clicks: counted clicks per workspace and local day

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 01:24:44.215838
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tally's days, added up: each click stays on the day the writer gave it, even one
# tallied before a change of time zone, so the totals agree with the tally they summarise
# (recomputing days from the click rows in today's zone would not). One statement on both
# databases: the days are already the workspace's calendar days.
BACKFILL = """
INSERT INTO daily_clicks (workspace_id, day, clicks)
SELECT workspace_id, day, sum(clicks)
FROM click_tally
GROUP BY workspace_id, day
ORDER BY workspace_id, day
"""


def upgrade() -> None:
    op.create_table(
        "daily_clicks",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_daily_clicks_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "day", name=op.f("pk_daily_clicks")),
    )
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Total the clicks already tallied, day by day, as the writer would have."""
    connection.execute(sa.text(BACKFILL))


def downgrade() -> None:
    op.drop_table("daily_clicks")
