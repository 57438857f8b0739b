"""teams conversation references and form cards

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 00:29:56.461282
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_reference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("service_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("bot_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column(
            "reference",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_conversation_reference_workspace_id_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_reference")),
        sa.UniqueConstraint(
            "workspace_id",
            "conversation_id",
            name=op.f("uq_conversation_reference_workspace_id_conversation_id"),
        ),
    )
    with op.batch_alter_table("conversation_reference", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_reference_workspace_id_kind_user_id"),
            ["workspace_id", "kind", "user_id"],
            unique=False,
        )

    op.create_table(
        "teams_form_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("form_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "form",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_teams_form_card_workspace_id_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams_form_card")),
        sa.UniqueConstraint(
            "workspace_id",
            "user_id",
            "form_id",
            "state_key",
            name=op.f("uq_teams_form_card_workspace_id_user_id_form_id_state_key"),
        ),
    )
    with op.batch_alter_table("teams_form_card", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_teams_form_card_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("teams_form_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_form_card_created_at"))

    op.drop_table("teams_form_card")
    with op.batch_alter_table("conversation_reference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_reference_workspace_id_kind_user_id"))

    op.drop_table("conversation_reference")
