"""send limit reserve: one reservation is one statement run inside PostgreSQL

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:30:00.000000

`flywheel_reserve` is the rule of `adapters.limits` (`reserve`, `Book.earliest`, `Book.add`,
`Book.drop`) run by the server: the rows it needs are created and locked in key order, the
slot is chosen and written, and the locks go with the statement, whose commit does not wait
for the disk. Done from the client, the locks were held across three round trips and a
flush to disk, and on a busy machine every dispatcher queued behind one that had the
locks and no CPU.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVE = """
CREATE OR REPLACE FUNCTION flywheel_reserve(
    keys text[], windows jsonb, max_wait float8, replacing float8
) RETURNS TABLE (reserved boolean, wait float8, which integer, at float8)
LANGUAGE plpgsql AS $fn$
DECLARE
    now_ float8;
    slot float8;
    pick integer := 1;
    e float8;
    ts float8[];
    blocked float8;
    n integer;
    pos integer;
    w jsonb;
    span float8;
    depth integer;
BEGIN
    -- The rows' locks end with the commit: it need not wait for the disk. A crash of the
    -- server forgets the last few milliseconds of reservations, no more.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO send_limit (key, times, blocked_until, expires_at)
        SELECT k, '[]'::jsonb, 0, 0 FROM unnest(keys) AS k ORDER BY k
        ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM send_limit AS s WHERE s.key = ANY(keys) ORDER BY s.key FOR UPDATE;
    now_ := extract(epoch from clock_timestamp());
    slot := now_;
    FOR i IN 1 .. array_length(keys, 1) LOOP
        SELECT ARRAY(SELECT t::float8 FROM jsonb_array_elements_text(s.times) AS t ORDER BY 1),
               s.blocked_until
          INTO ts, blocked FROM send_limit AS s WHERE s.key = keys[i];
        pos := array_position(ts, replacing);
        IF pos IS NOT NULL THEN
            ts := ts[1:pos - 1] || ts[pos + 1:];
        END IF;
        n := coalesce(array_length(ts, 1), 0);
        e := greatest(now_, blocked);
        IF n > 0 THEN
            e := greatest(e, ts[n]);
        END IF;
        FOR w IN SELECT value FROM jsonb_array_elements(windows -> (i - 1)) LOOP
            IF n >= (w ->> 0)::integer THEN
                e := greatest(e, ts[n - (w ->> 0)::integer + 1] + (w ->> 1)::float8);
            END IF;
        END LOOP;
        IF e > slot THEN
            slot := e;
            pick := i;
        END IF;
    END LOOP;
    IF slot - now_ > max_wait AND replacing IS NULL THEN
        RETURN QUERY SELECT false, slot - now_, pick, slot;
        RETURN;
    END IF;
    FOR i IN 1 .. array_length(keys, 1) LOOP
        SELECT ARRAY(SELECT t::float8 FROM jsonb_array_elements_text(s.times) AS t ORDER BY 1),
               s.blocked_until
          INTO ts, blocked FROM send_limit AS s WHERE s.key = keys[i];
        pos := array_position(ts, replacing);
        IF pos IS NOT NULL THEN
            ts := ts[1:pos - 1] || ts[pos + 1:];
        END IF;
        SELECT max((x ->> 1)::float8), max((x ->> 0)::integer) INTO span, depth
          FROM jsonb_array_elements(windows -> (i - 1)) AS x;
        IF slot - now_ <= max_wait THEN
            ts := ARRAY(SELECT t FROM unnest(ts || slot) AS t WHERE t > now_ - span ORDER BY t);
            n := coalesce(array_length(ts, 1), 0);
            IF n > depth THEN
                ts := ts[n - depth + 1:n];
            END IF;
        END IF;
        n := coalesce(array_length(ts, 1), 0);
        UPDATE send_limit AS s
           SET times = to_jsonb(ts),
               expires_at = greatest(CASE WHEN n > 0 THEN ts[n] ELSE 0 END, blocked) + span
         WHERE s.key = keys[i];
    END LOOP;
    RETURN QUERY SELECT slot - now_ <= max_wait, slot - now_, pick, slot;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RESERVE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS flywheel_reserve(text[], jsonb, float8, float8)")
