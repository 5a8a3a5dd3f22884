-- TikTok's webhooks (DESIGN §8.1).  A delivery carries no app user: it
-- names a post by publish_id or an account by open_id, so the one thing
-- the module runs for it is tiktok.webhook_apply(), a SECURITY DEFINER
-- function that records the delivery and applies it in the same
-- transaction.  Every delivery is recorded once, keyed by the SHA-256 of
-- its raw body: TikTok delivers at least once, and a repeat matches the
-- key, changes nothing and is answered 200 like the first.  Idempotent.

SET ROLE tiktok_owner;

-- TikTok's inbox status (drafts), which post.publish.inbox_delivered
-- sets; left alone when another migration allows it already (with
-- statuses of its own)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'tiktok.posts'::regclass
                      AND conname = 'posts_status_check'
                      AND pg_get_constraintdef(oid) LIKE '%sent_to_inbox%')
    THEN
        ALTER TABLE tiktok.posts DROP CONSTRAINT IF EXISTS
            posts_status_check;
        ALTER TABLE tiktok.posts ADD CONSTRAINT posts_status_check
            CHECK (status IN ('queued', 'scheduled', 'uploading',
                              'processing', 'published', 'failed',
                              'cancelled', 'sent_to_inbox'));
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS posts_publish_id
    ON tiktok.posts (publish_id) WHERE publish_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS accounts_open_id ON tiktok.accounts (open_id);

-- The deliveries: what they said and what came of them, never the body's
-- other fields nor the signature.
CREATE TABLE IF NOT EXISTS tiktok.webhook_events (
    id              bigserial   PRIMARY KEY,
    event_hash      bytea       NOT NULL UNIQUE,
    event           text        NOT NULL,
    create_time     bigint,
    user_openid     text,
    publish_id      text,
    outcome         text,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS webhook_events_received
    ON tiktok.webhook_events (received_at);

ALTER TABLE tiktok.webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.webhook_events FORCE ROW LEVEL SECURITY;

-- RLS is FORCEd: the functions below act through these owner policies;
-- tiktok_owner cannot log in
DROP POLICY IF EXISTS webhook_events_owner ON tiktok.webhook_events;
CREATE POLICY webhook_events_owner ON tiktok.webhook_events TO tiktok_owner
    USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS accounts_webhook ON tiktok.accounts;
CREATE POLICY accounts_webhook ON tiktok.accounts TO tiktok_owner
    USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS api_errors_webhook ON tiktok.api_errors;
CREATE POLICY api_errors_webhook ON tiktok.api_errors TO tiktok_owner
    USING (true) WITH CHECK (true);

REVOKE ALL ON tiktok.webhook_events FROM tiktok_app;


-- One verified delivery: recorded, then applied unless it is a repeat.
-- Returns its outcome (applied, duplicate, ignored, unknown_post,
-- unknown_account, unknown_event) and, for authorization.removed, one row
-- per app user of that TikTok account, whose caches the caller purges.
-- Final states are final: published and failed never change again.
CREATE OR REPLACE FUNCTION tiktok.webhook_apply(p_hash bytea, p_event text,
    p_create_time bigint, p_open_id text, p_publish_id text, p_reason text,
    p_post_id text)
RETURNS TABLE (outcome text, user_id text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id        bigint;
    v_post      uuid;
    v_status    text;
    v_username  text;
    v_user      text;
    v_outcome   text := 'applied';
BEGIN
    INSERT INTO tiktok.webhook_events AS w (event_hash, event, create_time,
        user_openid, publish_id)
    VALUES (p_hash, p_event, p_create_time, p_open_id, p_publish_id)
    ON CONFLICT (event_hash) DO NOTHING
    RETURNING w.id INTO v_id;

    IF v_id IS NULL THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::text;
        RETURN;
    END IF;

    IF p_event = 'authorization.removed' THEN
        v_outcome := 'unknown_account';

        -- the tokens are dead already; the same steps as a disconnect,
        -- but the account stays, marked for a reconnect
        FOR v_user IN
            UPDATE tiktok.accounts a SET needs_reconnect = true,
                   updated_at = now()
             WHERE a.open_id = p_open_id
            RETURNING a.user_id
        LOOP
            v_outcome := 'applied';

            UPDATE tiktok.posts p SET status = 'cancelled',
                   claim_until = NULL, claim_token = NULL,
                   error = 'authorization removed', updated_at = now()
             WHERE p.user_id = v_user
               AND p.status IN ('queued', 'scheduled')
               AND p.init_started_at IS NULL AND p.publish_id IS NULL;

            -- the durable purge (007_purges.sql), in its lock's order
            PERFORM pg_notify('tiktok_purge', v_user);
            PERFORM pg_advisory_xact_lock(hashtext('tiktok.purges'));
            INSERT INTO tiktok.purges (user_id) VALUES (v_user);

            RETURN QUERY SELECT 'applied'::text, v_user;
        END LOOP;

        UPDATE tiktok.webhook_events w SET outcome = v_outcome
         WHERE w.id = v_id;

        IF v_outcome <> 'applied' THEN
            RETURN QUERY SELECT v_outcome, NULL::text;
        END IF;

        RETURN;
    END IF;

    IF p_event NOT IN ('post.publish.complete', 'post.publish.failed',
                       'post.publish.inbox_delivered',
                       'post.publish.publicly_available',
                       'post.publish.no_longer_publicaly_available')
    THEN
        v_outcome := 'unknown_event';

    ELSE
        SELECT p.id, p.status, p.creator_username
          INTO v_post, v_status, v_username
          FROM tiktok.posts p
         WHERE p.publish_id = p_publish_id
         FOR UPDATE;

        IF v_post IS NULL THEN
            v_outcome := 'unknown_post';

        ELSIF p_event = 'post.publish.publicly_available' THEN
            IF p_post_id IS NULL OR v_username IS NULL THEN
                v_outcome := 'ignored';
            ELSE
                UPDATE tiktok.posts p
                   SET share_url = 'https://www.tiktok.com/@' || v_username
                                   || '/video/' || p_post_id,
                       updated_at = now()
                 WHERE p.id = v_post;
            END IF;

        ELSIF p_event = 'post.publish.no_longer_publicaly_available' THEN
            UPDATE tiktok.posts p SET share_url = NULL, updated_at = now()
             WHERE p.id = v_post;

        ELSIF v_status IN ('published', 'failed', 'cancelled')
              OR (v_status = 'sent_to_inbox'
                  AND p_event = 'post.publish.inbox_delivered')
        THEN
            v_outcome := 'ignored';

        ELSE
            -- the post leaves the publisher: its claim (if a job holds
            -- it) goes, and that job stops at its next fenced write
            UPDATE tiktok.posts p
               SET status = CASE p_event
                       WHEN 'post.publish.complete' THEN 'published'
                       WHEN 'post.publish.failed' THEN 'failed'
                       ELSE 'sent_to_inbox' END,
                   fail_reason = CASE WHEN p_event = 'post.publish.failed'
                       THEN coalesce(p_reason, 'failed') END,
                   claim_until = NULL, claim_token = NULL,
                   updated_at = now()
             WHERE p.id = v_post;
        END IF;
    END IF;

    UPDATE tiktok.webhook_events w SET outcome = v_outcome WHERE w.id = v_id;

    RETURN QUERY SELECT v_outcome, NULL::text;
END
$$;

-- A delivery refused before it was trusted (signature, timestamp,
-- client_key): an api_errors row without a user, naming why, never the
-- body or the signature.
CREATE OR REPLACE FUNCTION tiktok.webhook_reject(p_request_id text,
    p_message text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO tiktok.api_errors (request_id, endpoint, http_status, message)
    VALUES (p_request_id, 'webhook', 401, left(p_message, 200))
$$;

REVOKE ALL ON FUNCTION tiktok.webhook_apply(bytea, text, bigint, text, text,
    text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.webhook_apply(bytea, text, bigint, text,
    text, text, text) TO tiktok_app;
REVOKE ALL ON FUNCTION tiktok.webhook_reject(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tiktok.webhook_reject(text, text) TO tiktok_app;

RESET ROLE;
