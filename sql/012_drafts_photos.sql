-- Drafts (DESIGN §8.2) and photo posts (§8.3).  A post has a mode
-- ('direct': posted; 'draft': sent to the creator's inbox, finished in the
-- TikTok app) and a media type ('VIDEO', or 'PHOTO' with its photo_urls
-- and cover index).  A draft ends 'sent_to_inbox'.  (Numbered 012: 010 and
-- 011 are left to the webhooks' work, done alongside.)  Idempotent.

SET ROLE tiktok_owner;

ALTER TABLE tiktok.posts
    ADD COLUMN IF NOT EXISTS mode text NOT NULL DEFAULT 'direct'
        CHECK (mode IN ('direct', 'draft')),
    ADD COLUMN IF NOT EXISTS media_type text NOT NULL DEFAULT 'VIDEO'
        CHECK (media_type IN ('VIDEO', 'PHOTO')),
    ADD COLUMN IF NOT EXISTS photo_urls jsonb,
    ADD COLUMN IF NOT EXISTS photo_cover_index integer;

-- a photo post has its images, a video post none
ALTER TABLE tiktok.posts DROP CONSTRAINT IF EXISTS posts_photo_urls;
ALTER TABLE tiktok.posts ADD CONSTRAINT posts_photo_urls CHECK (
    (media_type = 'PHOTO') = (photo_urls IS NOT NULL
                              AND jsonb_typeof(photo_urls) = 'array'));

-- every status a post can have, sent_to_inbox included
ALTER TABLE tiktok.posts DROP CONSTRAINT IF EXISTS posts_status_check;
ALTER TABLE tiktok.posts ADD CONSTRAINT posts_status_check CHECK (status IN
    ('queued', 'scheduled', 'uploading', 'processing', 'published',
     'failed', 'cancelled', 'sent_to_inbox'));

-- 005's claim does not return the mode and the media: a publisher built
-- before this file would post a draft or a photo post as a video, so it
-- must not claim.  (Re-applying 005 creates it again; this file, applied
-- after it, drops it again.)
DROP FUNCTION IF EXISTS tiktok.claim_posts_fenced(text, integer, interval);

CREATE OR REPLACE FUNCTION tiktok.claim_posts_media(p_worker text,
    p_batch integer, p_lease interval)
RETURNS TABLE (id uuid, user_id text, status text, source text,
    video_url text, spool_path text, video_size bigint, content_type text,
    post_info jsonb, publish_id text, upload_url text,
    uploaded_bytes bigint, init_started boolean, attempts integer,
    creator_username text, claim_token uuid, mode text, media_type text,
    photo_urls jsonb, photo_cover_index integer)
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
              p.claim_token, p.mode, p.media_type, p.photo_urls,
              p.photo_cover_index
$$;

REVOKE ALL ON FUNCTION tiktok.claim_posts_media(text, integer, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.claim_posts_media(text, integer, interval)
    TO tiktok_app;

RESET ROLE;
