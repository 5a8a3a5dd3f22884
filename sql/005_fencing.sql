-- Fencing for the publisher (DESIGN §5 "Exactly once, precisely").  Each
-- claim of a post gives it a new claim_token, which the claim returns to
-- the claiming job; every later write the job makes for the post names
-- it (UPDATE ... WHERE id = $1 AND claim_token = $2).  A job whose lease
-- ran out and whose post another worker claimed, or whose post was
-- cancelled (a cancel clears the token), matches no row and stops.
-- Idempotent.

SET ROLE tiktok_owner;

ALTER TABLE tiktok.posts
    ADD COLUMN IF NOT EXISTS claim_token uuid;

-- 004's claim hands out no token: a publisher built before the fencing
-- must not claim alongside fenced ones.  (Re-applying 004 creates it
-- again; this file, applied after it, drops it again.)
DROP FUNCTION IF EXISTS tiktok.claim_posts(text, integer, interval);

CREATE OR REPLACE FUNCTION tiktok.claim_posts_fenced(p_worker text,
    p_batch integer, p_lease interval)
RETURNS TABLE (id uuid, user_id text, status text, source text,
    video_url text, spool_path text, video_size bigint, content_type text,
    post_info jsonb, publish_id text, upload_url text,
    uploaded_bytes bigint, init_started boolean, attempts integer,
    creator_username text, claim_token uuid)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT p.id FROM tiktok.posts p
        WHERE p.status IN ('queued', 'scheduled', 'uploading', 'processing')
          AND p.next_attempt_at <= now()
          AND (p.claim_until IS NULL OR p.claim_until < now())
        ORDER BY p.next_attempt_at
        LIMIT greatest(least(p_batch, 1000), 1)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tiktok.posts p
       SET claimed_by = p_worker, claimed_at = now(),
           claim_until = now() + p_lease, claim_token = gen_random_uuid(),
           updated_at = now()
      FROM due
     WHERE p.id = due.id
    RETURNING p.id, p.user_id, p.status, p.source, p.video_url, p.spool_path,
              p.video_size, p.content_type, p.post_info, p.publish_id,
              p.upload_url, p.uploaded_bytes,
              p.init_started_at IS NOT NULL, p.attempts, p.creator_username,
              p.claim_token
$$;

REVOKE ALL ON FUNCTION tiktok.claim_posts_fenced(text, integer, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.claim_posts_fenced(text, integer, interval)
    TO tiktok_app;

RESET ROLE;
