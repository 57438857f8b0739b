"""tracked links and clicks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 23:03:55.764465
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracked_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("network", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_tracked_link_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name=op.f("fk_tracked_link_post_id_post")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_tracked_link_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_link")),
        sa.UniqueConstraint("code", name=op.f("uq_tracked_link_code")),
        sa.UniqueConstraint(
            "post_id",
            "member_id",
            "network",
            name=op.f("uq_tracked_link_post_id_member_id_network"),
        ),
    )
    with op.batch_alter_table("tracked_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tracked_link_workspace_id_member_id"),
            ["workspace_id", "member_id"],
            unique=False,
        )

    op.create_table(
        "click",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("network", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("is_preview", sa.Boolean(), nullable=False),
        sa.Column("is_repeat", sa.Boolean(), nullable=False),
        sa.Column("visitor", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["tracked_link.id"], name=op.f("fk_click_link_id_tracked_link")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_click_member_id_member")
        ),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], name=op.f("fk_click_post_id_post")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_click_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click")),
    )
    with op.batch_alter_table("click", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_click_visitor_at"), ["visitor", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_click_member_id_at"), ["member_id", "at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_click_post_id_at"), ["post_id", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_click_workspace_id_at"), ["workspace_id", "at"], unique=False
        )

    # Posts published before this revision get a code of their own before the column
    # becomes required.
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    connection = op.get_bind()
    post = sa.table("post", sa.column("id", sa.Integer()), sa.column("public_code", sa.String()))
    for (post_id,) in connection.execute(sa.select(post.c.id)).all():
        connection.execute(
            post.update().where(post.c.id == post_id).values(public_code=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.alter_column(
            "public_code", existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_post_public_code"), ["public_code"])


def downgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_post_public_code"), type_="unique")
        batch_op.drop_column("public_code")

    with op.batch_alter_table("click", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_click_workspace_id_at"))
        batch_op.drop_index(batch_op.f("ix_click_post_id_at"))
        batch_op.drop_index(batch_op.f("ix_click_member_id_at"))
        batch_op.drop_index(batch_op.f("ix_click_visitor_at"))

    op.drop_table("click")
    with op.batch_alter_table("tracked_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_link_workspace_id_member_id"))

    op.drop_table("tracked_link")
