"""routing pings and assignments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:58:24.835595
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ping",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("suggested_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("deliver_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_ping_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["content_request.id"], name=op.f("fk_ping_request_id_content_request")
        ),
        sa.ForeignKeyConstraint(
            ["suggested_by_id"], ["member.id"], name=op.f("fk_ping_suggested_by_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_ping_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ping")),
        sa.UniqueConstraint("request_id", "member_id", name=op.f("uq_ping_request_id_member_id")),
    )
    with op.batch_alter_table("ping", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ping_member_id_created_at"), ["member_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ping_request_id"), ["request_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ping_workspace_id_status_expires_at"),
            ["workspace_id", "status", "expires_at"],
            unique=False,
        )

    with op.batch_alter_table("content_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reminded_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_content_request_assignee_id_member"), "member", ["assignee_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("content_request", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_content_request_assignee_id_member"), type_="foreignkey"
        )
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("assignee_id")

    with op.batch_alter_table("ping", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ping_workspace_id_status_expires_at"))
        batch_op.drop_index(batch_op.f("ix_ping_request_id"))
        batch_op.drop_index(batch_op.f("ix_ping_member_id_created_at"))

    op.drop_table("ping")
