"""linkedin: connected accounts (sealed tokens), used OAuth states, posts made from chat

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "linkedin_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("person_id", _s(64), nullable=False),
        sa.Column("name", _s(200), nullable=False),
        sa.Column("token", _s(4000), nullable=False),
        sa.Column("scope", _s(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime(), nullable=True),
        sa.Column("expiry_told_at", UTCDateTime(), nullable=True),
        sa.Column("disconnected_at", UTCDateTime(), nullable=True),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_linkedin_account_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_linkedin_account_workspace_id_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_account")),
        sa.UniqueConstraint("member_id", name=op.f("uq_linkedin_account_member_id")),
    )
    op.create_index(op.f("ix_linkedin_account_workspace_id"), "linkedin_account", ["workspace_id"])
    op.create_table(
        "linkedin_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", _s(64), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_linkedin_state_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_linkedin_state_workspace_id_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_state")),
        sa.UniqueConstraint("nonce", name=op.f("uq_linkedin_state_nonce")),
    )
    op.create_index(op.f("ix_linkedin_state_used_at"), "linkedin_state", ["used_at"])
    op.create_table(
        "linkedin_post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("caption", _s(3000), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("urn", _s(200), nullable=True),
        sa.Column("error", _s(1000), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["tracked_link.id"], name=op.f("fk_linkedin_post_link_id_tracked_link")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_linkedin_post_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name=op.f("fk_linkedin_post_post_id_post")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_linkedin_post_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_post")),
    )
    op.create_index(op.f("ix_linkedin_post_status_due_at"), "linkedin_post", ["status", "due_at"])
    op.create_index(
        op.f("ix_linkedin_post_workspace_id_member_id"),
        "linkedin_post",
        ["workspace_id", "member_id"],
    )
    op.create_index(op.f("ix_linkedin_post_post_id"), "linkedin_post", ["post_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_linkedin_post_post_id"), table_name="linkedin_post")
    op.drop_index(op.f("ix_linkedin_post_workspace_id_member_id"), table_name="linkedin_post")
    op.drop_index(op.f("ix_linkedin_post_status_due_at"), table_name="linkedin_post")
    op.drop_table("linkedin_post")
    op.drop_index(op.f("ix_linkedin_state_used_at"), table_name="linkedin_state")
    op.drop_table("linkedin_state")
    op.drop_index(op.f("ix_linkedin_account_workspace_id"), table_name="linkedin_account")
    op.drop_table("linkedin_account")
