-- Durable cache purges.  A disconnect writes a purge record in its own
-- transaction as well as NOTIFY tiktok_purge, so an nginx node whose
-- listener was away when the notification went out (a reconnect, a
-- transaction pooler that drops notifications) still finds the record:
-- each node remembers the last record it applied and reads the newer ones
-- through tiktok.purges_after(), the one cross-user read, when its
-- listener (re)connects and every few seconds.  Idempotent.
--
-- Records are inserted under pg_advisory_xact_lock(hashtext('tiktok.purges'))
-- (see the disconnect statement), so ids become visible in commit order
-- and "every id up to the newest one read" is a safe place to resume from.

SET ROLE tiktok_owner;

CREATE TABLE IF NOT EXISTS tiktok.purges (
    id          bigserial   PRIMARY KEY,
    user_id     text        NOT NULL CHECK (user_id <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS purges_created_at ON tiktok.purges (created_at);

ALTER TABLE tiktok.purges ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.purges FORCE ROW LEVEL SECURITY;

-- tiktok_app writes its own user's records and reads none directly
DROP POLICY IF EXISTS purges_insert_own ON tiktok.purges;
CREATE POLICY purges_insert_own ON tiktok.purges FOR INSERT TO tiktok_app
    WITH CHECK (user_id = current_setting('app.user_id', true));

-- RLS is FORCEd: the SECURITY DEFINER functions below act through this
DROP POLICY IF EXISTS purges_owner ON tiktok.purges;
CREATE POLICY purges_owner ON tiktok.purges TO tiktok_owner
    USING (true) WITH CHECK (true);

REVOKE ALL ON tiktok.purges FROM tiktok_app;
GRANT INSERT ON tiktok.purges TO tiktok_app;
GRANT USAGE ON SEQUENCE tiktok.purges_id_seq TO tiktok_app;

-- the records after p_after, oldest first: ids and users only
CREATE OR REPLACE FUNCTION tiktok.purges_after(p_after bigint,
    p_limit integer)
RETURNS TABLE (id bigint, user_id text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.id, p.user_id FROM tiktok.purges p
    WHERE p.id > p_after
    ORDER BY p.id
    LIMIT greatest(least(p_limit, 10000), 1)
$$;

-- deletes records older than p_keep (at least an hour); returns how many
CREATE OR REPLACE FUNCTION tiktok.purges_expire(p_keep interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM tiktok.purges
        WHERE created_at < now() - greatest(p_keep, interval '1 hour')
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

REVOKE ALL ON FUNCTION tiktok.purges_after(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.purges_after(bigint, integer)
    TO tiktok_app;
REVOKE ALL ON FUNCTION tiktok.purges_expire(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.purges_expire(interval) TO tiktok_app;

RESET ROLE;
