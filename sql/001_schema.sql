-- Schema tiktok: accounts, OAuth states, posts, API errors.
-- Every object is owned by tiktok_owner.  Idempotent.

SET ROLE tiktok_owner;

CREATE SCHEMA IF NOT EXISTS tiktok;

REVOKE ALL ON SCHEMA tiktok FROM PUBLIC;
GRANT USAGE ON SCHEMA tiktok TO tiktok_app;

-- One TikTok account per app user.  Tokens are AES-256-GCM sealed by the
-- module (key_id || nonce || ciphertext || tag, AAD = user id + column);
-- the database never sees them in plain text.
CREATE TABLE IF NOT EXISTS tiktok.accounts (
    user_id             text        PRIMARY KEY CHECK (user_id <> ''),
    open_id             text        NOT NULL,
    display_name        text,
    avatar_url          text,
    scopes              text[]      NOT NULL DEFAULT '{}',
    access_token_enc    bytea       NOT NULL,
    refresh_token_enc   bytea       NOT NULL,
    access_expires_at   timestamptz NOT NULL,
    refresh_expires_at  timestamptz NOT NULL,
    needs_reconnect     boolean     NOT NULL DEFAULT false,
    key_id              bytea       NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- OAuth state: only a hash of the state is kept, with the PKCE verifier
-- sealed; single use, ten minutes.
CREATE TABLE IF NOT EXISTS tiktok.oauth_states (
    state_hash          bytea       PRIMARY KEY,
    user_id             text        NOT NULL CHECK (user_id <> ''),
    code_verifier_enc   bytea,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS oauth_states_expires
    ON tiktok.oauth_states (expires_at);

CREATE TABLE IF NOT EXISTS tiktok.posts (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text        NOT NULL CHECK (user_id <> ''),
    status              text        NOT NULL CHECK (status IN
                            ('queued', 'scheduled', 'uploading', 'processing',
                             'published', 'failed', 'cancelled')),
    source              text        NOT NULL CHECK (source IN
                            ('PULL_FROM_URL', 'FILE_UPLOAD')),
    video_url           text,
    spool_path          text,
    video_size          bigint,
    content_type        text,
    post_info           jsonb       NOT NULL DEFAULT '{}',
    schedule_at         timestamptz,
    publish_id          text,
    share_url           text,
    fail_reason         text,
    error               text,
    attempts            integer     NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    claimed_by          text,
    claimed_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS posts_user_created
    ON tiktok.posts (user_id, created_at DESC);

CREATE INDEX IF NOT EXISTS posts_due
    ON tiktok.posts (next_attempt_at)
    WHERE status IN ('queued', 'scheduled', 'uploading', 'processing');

-- What went wrong with TikTok or the database, by correlation id.  Never a
-- secret: the module writes codes, log ids and messages only.
CREATE TABLE IF NOT EXISTS tiktok.api_errors (
    id                  bigserial   PRIMARY KEY,
    created_at          timestamptz NOT NULL DEFAULT now(),
    user_id             text        CHECK (user_id <> ''),
    request_id          text,
    endpoint            text        NOT NULL,
    http_status         integer,
    tiktok_code         text,
    log_id              text,
    message             text
);

CREATE INDEX IF NOT EXISTS api_errors_user_created
    ON tiktok.api_errors (user_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON tiktok.accounts, tiktok.oauth_states, tiktok.posts TO tiktok_app;
GRANT SELECT, INSERT ON tiktok.api_errors TO tiktok_app;
GRANT USAGE ON SEQUENCE tiktok.api_errors_id_seq TO tiktok_app;

RESET ROLE;
