-- The publisher's side of tiktok.posts.  Every worker of every nginx node
-- claims due posts through tiktok.claim_posts(), the one cross-user read:
-- FOR UPDATE SKIP LOCKED hands each post to exactly one claimer, and a
-- claim is a lease, so the posts of a publisher that died are claimed
-- again when it runs out.  Each later state change is one committed row
-- update made as tiktok_app under the post's own user (row-level
-- security).  Idempotent.

SET ROLE tiktok_owner;

ALTER TABLE tiktok.posts
    ADD COLUMN IF NOT EXISTS upload_url       text,
    ADD COLUMN IF NOT EXISTS uploaded_bytes   bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS init_started_at  timestamptz,
    ADD COLUMN IF NOT EXISTS claim_until      timestamptz,
    ADD COLUMN IF NOT EXISTS creator_username text;

-- RLS is FORCEd, so the owner too needs a policy; tiktok_owner cannot log
-- in, so only SECURITY DEFINER functions act through this one.
DROP POLICY IF EXISTS posts_publisher ON tiktok.posts;
CREATE POLICY posts_publisher ON tiktok.posts TO tiktok_owner
    USING (true) WITH CHECK (true);

CREATE OR REPLACE FUNCTION tiktok.claim_posts(p_worker text,
    p_batch integer, p_lease interval)
RETURNS TABLE (id uuid, user_id text, status text, source text,
    video_url text, spool_path text, video_size bigint, content_type text,
    post_info jsonb, publish_id text, upload_url text,
    uploaded_bytes bigint, init_started boolean, attempts integer,
    creator_username text)
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
           claim_until = now() + p_lease, updated_at = now()
      FROM due
     WHERE p.id = due.id
    RETURNING p.id, p.user_id, p.status, p.source, p.video_url, p.spool_path,
              p.video_size, p.content_type, p.post_info, p.publish_id,
              p.upload_url, p.uploaded_bytes,
              p.init_started_at IS NOT NULL, p.attempts, p.creator_username
$$;

REVOKE ALL ON FUNCTION tiktok.claim_posts(text, integer, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.claim_posts(text, integer, interval)
    TO tiktok_app;

RESET ROLE;
