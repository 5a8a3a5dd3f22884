-- The upload spool's janitor asks which spool files a post still needs:
-- the files of posts not yet published, failed or cancelled.  One
-- cross-user read, so a SECURITY DEFINER function that returns only the
-- paths it was given.  Idempotent.

SET ROLE tiktok_owner;

CREATE INDEX IF NOT EXISTS posts_spool_path
    ON tiktok.posts (spool_path) WHERE spool_path IS NOT NULL;

CREATE OR REPLACE FUNCTION tiktok.spool_files_in_use(p_paths text[])
RETURNS SETOF text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT p.spool_path FROM tiktok.posts p
    WHERE p.spool_path = ANY (p_paths)
      AND p.status NOT IN ('published', 'failed', 'cancelled',
                           'sent_to_inbox')
$$;

REVOKE ALL ON FUNCTION tiktok.spool_files_in_use(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.spool_files_in_use(text[]) TO tiktok_app;

RESET ROLE;
