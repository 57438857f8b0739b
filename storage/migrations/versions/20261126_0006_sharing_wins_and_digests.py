"""sharing, wins and digests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:26:04.293840
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("week", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chart_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("page_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "figures",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("chart_png", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_digest_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest")),
        sa.UniqueConstraint("chart_code", name=op.f("uq_digest_chart_code")),
        sa.UniqueConstraint("page_code", name=op.f("uq_digest_page_code")),
        sa.UniqueConstraint(
            "workspace_id", "channel", "week", name=op.f("uq_digest_workspace_id_channel_week")
        ),
    )
    op.create_table(
        "distribution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "variants",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("planned_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name=op.f("fk_distribution_post_id_post")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_distribution_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distribution")),
        sa.UniqueConstraint("post_id", name=op.f("uq_distribution_post_id")),
    )
    with op.batch_alter_table("distribution", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_distribution_status_created_at"), ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_distribution_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "share_suggestion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("caption", sqlmodel.sql.sqltypes.AutoString(length=3000), nullable=False),
        sa.Column("deliver_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_share_suggestion_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name=op.f("fk_share_suggestion_post_id_post")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_share_suggestion_workspace_id_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_suggestion")),
        sa.UniqueConstraint(
            "post_id", "member_id", name=op.f("uq_share_suggestion_post_id_member_id")
        ),
    )
    with op.batch_alter_table("share_suggestion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_share_suggestion_member_id_local_day"),
            ["member_id", "local_day"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_share_suggestion_workspace_id_deliver_at"),
            ["workspace_id", "deliver_at"],
            unique=False,
        )

    op.create_table(
        "win",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], name=op.f("fk_win_member_id_member")),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], name=op.f("fk_win_post_id_post")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_win_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_win")),
    )
    with op.batch_alter_table("win", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_win_post_id"), ["post_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_win_workspace_id_at"), ["workspace_id", "at"], unique=False
        )

    op.create_table(
        "share",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("network", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["tracked_link.id"], name=op.f("fk_share_link_id_tracked_link")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_share_member_id_member")
        ),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], name=op.f("fk_share_post_id_post")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_share_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share")),
    )
    with op.batch_alter_table("share", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_share_member_id_at"), ["member_id", "at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_share_post_id_at"), ["post_id", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_share_workspace_id_at"), ["workspace_id", "at"], unique=False
        )

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("share_opt_in", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "interests",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
        batch_op.add_column(
            sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.add_column(sa.Column("personal_notes", sa.Boolean(), nullable=True))

    # Each link gets a second random code, for the share button that leads to it; existing
    # links get theirs here, before the column becomes required.
    with op.batch_alter_table("tracked_link", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("intent_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    links = sa.table("tracked_link", sa.column("id", sa.Integer), sa.column("intent_code"))
    connection = op.get_bind()
    for (link_id,) in connection.execute(sa.select(links.c.id)).all():
        connection.execute(
            links.update()
            .where(links.c.id == link_id)
            .values(intent_code=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("tracked_link", schema=None) as batch_op:
        batch_op.alter_column(
            "intent_code", existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_tracked_link_intent_code"), ["intent_code"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tracked_link", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tracked_link_intent_code"), type_="unique")
        batch_op.drop_column("intent_code")
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_column("personal_notes")
        batch_op.drop_column("team")
        batch_op.drop_column("interests")
        batch_op.drop_column("share_opt_in")
        batch_op.drop_column("title")

    with op.batch_alter_table("share", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_workspace_id_at"))
        batch_op.drop_index(batch_op.f("ix_share_post_id_at"))
        batch_op.drop_index(batch_op.f("ix_share_member_id_at"))

    op.drop_table("share")
    with op.batch_alter_table("win", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_win_workspace_id_at"))
        batch_op.drop_index(batch_op.f("ix_win_post_id"))

    op.drop_table("win")
    with op.batch_alter_table("share_suggestion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_suggestion_workspace_id_deliver_at"))
        batch_op.drop_index(batch_op.f("ix_share_suggestion_member_id_local_day"))

    op.drop_table("share_suggestion")
    with op.batch_alter_table("distribution", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_distribution_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_distribution_status_created_at"))

    op.drop_table("distribution")
    op.drop_table("digest")
