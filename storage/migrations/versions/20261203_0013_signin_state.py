"""signin state and first clicks: single-use state and nonce of program-page sign-ins; the
day each tracked link was first clicked, filled from the click tally

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_state",
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("next_path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_signin_state")),
    )
    op.create_index(
        op.f("ix_signin_state_expires_at"), "signin_state", ["expires_at"], unique=False
    )
    with op.batch_alter_table("tracked_link") as batch:
        batch.add_column(sa.Column("first_click_day", sa.Date(), nullable=True))
    # One pass over the tally (UPDATE … FROM: PostgreSQL, and SQLite since 3.33).
    op.execute(
        "UPDATE tracked_link SET first_click_day = f.day FROM ("
        " SELECT workspace_id, post_id, member_id, network, min(day) AS day"
        " FROM click_tally WHERE clicks > 0"
        " GROUP BY workspace_id, post_id, member_id, network) AS f"
        " WHERE tracked_link.workspace_id = f.workspace_id"
        " AND tracked_link.post_id = f.post_id AND tracked_link.member_id = f.member_id"
        " AND tracked_link.network = f.network"
    )


def downgrade() -> None:
    with op.batch_alter_table("tracked_link") as batch:
        batch.drop_column("first_click_day")
    op.drop_index(op.f("ix_signin_state_expires_at"), table_name="signin_state")
    op.drop_table("signin_state")
