"""click tally: counted clicks per local day, post, sharer and network

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 01:04:22.505350
"""

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Days are calendar days in the workspace's time zone (settings "timezone"; UTC when unset
# or unknown), as the click writer counts them. Rows go in by day, as the writer adds them,
# so a range of days stays a range of pages.
BACKFILL_POSTGRES = """
INSERT INTO click_tally (workspace_id, day, post_id, member_id, network, clicks)
SELECT c.workspace_id, (c.at AT TIME ZONE z.name)::date, c.post_id, c.member_id, c.network,
       count(*)
FROM click AS c
JOIN (
    SELECT w.id, coalesce(known.name, 'UTC') AS name
    FROM workspace AS w
    LEFT JOIN pg_timezone_names AS known ON known.name = w.settings ->> 'timezone'
) AS z ON z.id = c.workspace_id
WHERE NOT c.is_preview AND NOT c.is_repeat
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2
"""

# SQLite has no time zones: the day is the UTC time shifted by the zone's offset, one
# statement per stretch of time with a constant offset (DST changes start a new stretch).
BACKFILL_SQLITE = """
INSERT INTO click_tally (workspace_id, day, post_id, member_id, network, clicks)
SELECT workspace_id, date(at, :shift), post_id, member_id, network, count(*)
FROM click
WHERE workspace_id = :workspace AND NOT is_preview AND NOT is_repeat
  AND at >= :since AND at < :until
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (workspace_id, day, post_id, member_id, network)
DO UPDATE SET clicks = clicks + excluded.clicks
"""


def upgrade() -> None:
    op.create_table(
        "click_tally",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("network", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_click_tally_member_id_member")
        ),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], name=op.f("fk_click_tally_post_id_post")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_click_tally_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "day", "post_id", "member_id", "network", name=op.f("pk_click_tally")
        ),
    )
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Tally the clicks already recorded, as the writer would have."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(BACKFILL_POSTGRES))
        return
    spans = connection.execute(
        sa.text(
            "SELECT c.workspace_id, w.settings, min(c.at), max(c.at) FROM click AS c "
            "JOIN workspace AS w ON w.id = c.workspace_id "
            "WHERE NOT c.is_preview AND NOT c.is_repeat GROUP BY c.workspace_id, w.settings"
        )
    ).all()
    for workspace_id, settings, first, last in spans:
        tz = _zone(settings)
        start, end = _utc(first), _utc(last) + timedelta(seconds=1)
        for since, until, offset in _stretches(tz, start, end):
            connection.execute(
                sa.text(BACKFILL_SQLITE),
                {
                    "workspace": workspace_id,
                    "shift": f"{int(offset.total_seconds()):+d} seconds",
                    "since": _text(since),
                    "until": _text(until),
                },
            )


def _zone(settings: object) -> ZoneInfo:
    values = json.loads(settings) if isinstance(settings, str) else settings
    name = values.get("timezone") if isinstance(values, dict) else None
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(moment: datetime) -> str:
    # As SQLite keeps UTC datetimes: naive text with microseconds.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _stretches(
    tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, timedelta]]:
    """[since, until) stretches covering [start, end) in which `tz` keeps one UTC offset."""

    def offset(moment: datetime) -> timedelta:
        return moment.astimezone(tz).utcoffset() or timedelta(0)

    stretches: list[tuple[datetime, datetime, timedelta]] = []
    since, current, step = start, offset(start), timedelta(hours=6)
    probe = start
    while probe < end:
        ahead = min(probe + step, end)
        if offset(ahead) == current:
            probe = ahead
            continue
        # Offsets change on a whole second, somewhere in (probe, ahead]: find which.
        low, high = math.floor(probe.timestamp()), math.ceil(ahead.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            if offset(datetime.fromtimestamp(middle, UTC)) == current:
                low = middle
            else:
                high = middle
        change = datetime.fromtimestamp(high, UTC)
        stretches.append((since, change, current))
        since, current, probe = change, offset(change), change
    stretches.append((since, end, current))
    return stretches


def downgrade() -> None:
    op.drop_table("click_tally")
