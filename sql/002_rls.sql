-- Row-level security: every user table is ENABLEd and FORCEd (the owner
-- too is bound), and rows are visible only to the transaction whose
-- app.user_id setting names their user.  current_setting(..., true) is NULL
-- when the setting is missing and '' after a SET LOCAL ended, and neither
-- equals a user_id (user_id <> '' by CHECK), so "no setting" sees nothing.
-- Idempotent.

SET ROLE tiktok_owner;

ALTER TABLE tiktok.accounts     ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.accounts     FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok.oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.oauth_states FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok.posts        ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.posts        FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok.api_errors   ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiktok.api_errors   FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS accounts_by_user ON tiktok.accounts;
CREATE POLICY accounts_by_user ON tiktok.accounts
    USING (user_id = current_setting('app.user_id', true))
    WITH CHECK (user_id = current_setting('app.user_id', true));

DROP POLICY IF EXISTS oauth_states_by_user ON tiktok.oauth_states;
CREATE POLICY oauth_states_by_user ON tiktok.oauth_states
    USING (user_id = current_setting('app.user_id', true))
    WITH CHECK (user_id = current_setting('app.user_id', true));

DROP POLICY IF EXISTS posts_by_user ON tiktok.posts;
CREATE POLICY posts_by_user ON tiktok.posts
    USING (user_id = current_setting('app.user_id', true))
    WITH CHECK (user_id = current_setting('app.user_id', true));

DROP POLICY IF EXISTS api_errors_by_user ON tiktok.api_errors;
CREATE POLICY api_errors_by_user ON tiktok.api_errors
    USING (user_id = current_setting('app.user_id', true))
    WITH CHECK (user_id = current_setting('app.user_id', true));

RESET ROLE;
