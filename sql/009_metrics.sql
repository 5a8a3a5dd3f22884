-- Operator metrics: how many posts there are in each status, across every
-- user, for the tiktok_metrics handler.  tiktok_app sees only the current
-- user's rows (row-level security), so the one aggregate it needs is a
-- SECURITY DEFINER function that returns a count per status and nothing
-- about any user.  Idempotent.

SET ROLE tiktok_owner;

CREATE OR REPLACE FUNCTION tiktok.post_counts()
RETURNS TABLE (status text, posts bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.status, count(*) FROM tiktok.posts p GROUP BY p.status
$$;

REVOKE ALL ON FUNCTION tiktok.post_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.post_counts() TO tiktok_app;

RESET ROLE;
